"""Ed25519 (JWS alg `EdDSA`, RFC 8037) for python-jose, which has no built-in key class for it.

Importing this module registers `Ed25519Key` with `jose.jwk`, so `jose.jws.sign`
and `jose.jws.verify` accept `algorithm="EdDSA"`.
"""

from __future__ import annotations

from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from jose import jwk
from jose.backends.base import Key
from jose.exceptions import JWKError

from loot.tokens.base64url import b64url, b64url_decode

ALGORITHM = "EdDSA"
_P = 2**255 - 19
_D = -121665 * pow(121666, -1, _P) % _P
# y of the eight points of order 1, 2, 4 and 8 (the sign bit picks ±x). A key of
# small order lets anyone forge signatures for it, so such keys are refused.
_SMALL_ORDER_Y = frozenset({
    0, 1, _P - 1,
    int.from_bytes(bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"), "little"),
    int.from_bytes(bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"), "little"),
})


def is_valid_public_key(encoded: bytes) -> bool:
    """Whether 32 bytes are the canonical encoding of a curve point of large order (RFC 8032 §5.1.3)."""
    if len(encoded) != 32:
        return False
    y = int.from_bytes(encoded, "little") & (2**255 - 1)  # the top bit only picks the sign of x
    if y >= _P or y in _SMALL_ORDER_Y:
        return False
    # x² = u / v has a root iff u·v is a square mod p (v ≠ 0 as d is not a square; u ≠ 0 as y ≠ ±1).
    return _jacobi((y * y - 1) * (_D * y * y + 1), _P) == 1


def _jacobi(a: int, n: int) -> int:
    """The Jacobi symbol (a/n) for odd n: several times faster in Python than Euler's pow(a, (n-1)/2, n)."""
    a %= n
    result = 1
    while a:
        twos = (a & -a).bit_length() - 1
        a >>= twos
        if twos & 1 and n & 7 in (3, 5):
            result = -result
        if a & n & 3 == 3:
            result = -result
        a, n = n % a, a
    return result if n == 1 else 0


class Ed25519Key(Key):
    """A python-jose key for alg `EdDSA` over an OKP Ed25519 JWK, a PEM, or a `cryptography` key."""

    def __init__(self, key: Any, algorithm: str):
        if algorithm != ALGORITHM:
            raise JWKError(f"Ed25519 keys sign with alg {ALGORITHM}, not {algorithm}")
        if isinstance(key, dict):
            key = _from_jwk(key)
        elif isinstance(key, (bytes, str)):
            key = _from_pem(key.encode() if isinstance(key, str) else key)
        if not isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
            raise JWKError(f"not an Ed25519 key: {type(key).__name__}")
        self._key = key
        self._algorithm = algorithm

    def is_public(self) -> bool:
        return isinstance(self._key, ed25519.Ed25519PublicKey)

    def sign(self, msg: bytes) -> bytes:
        if self.is_public():
            raise JWKError("a public key cannot sign")
        return self._key.sign(msg)

    def verify(self, msg: bytes, sig: bytes) -> bool:
        try:
            self._public().verify(sig, msg)
            return True
        except InvalidSignature:
            return False

    def public_key(self) -> Ed25519Key:
        return Ed25519Key(self._public(), self._algorithm)

    def to_pem(self) -> bytes:
        if self.is_public():
            return self._key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        return self._key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())

    def to_dict(self) -> dict[str, str]:
        data = {"alg": self._algorithm, "kty": "OKP", "crv": "Ed25519", "x": b64url(self._public().public_bytes_raw())}
        if not self.is_public():
            data["d"] = b64url(self._key.private_bytes_raw())
        return data

    def _public(self) -> ed25519.Ed25519PublicKey:
        return self._key if self.is_public() else self._key.public_key()


def _from_jwk(data: dict[str, Any]) -> ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey:
    if data.get("kty") != "OKP" or data.get("crv") != "Ed25519":
        raise JWKError("an EdDSA key must be an OKP JWK on curve Ed25519")
    try:
        if "d" in data:
            private = ed25519.Ed25519PrivateKey.from_private_bytes(b64url_decode(data["d"]))
            if "x" in data and b64url(private.public_key().public_bytes_raw()) != data["x"]:
                raise JWKError("the JWK's x is not the public key of its d")
            return private
        x = b64url_decode(data["x"])
    except (KeyError, TypeError, ValueError) as error:
        raise JWKError(f"malformed Ed25519 JWK: {error}") from error
    if not is_valid_public_key(x):
        raise JWKError("the JWK's x is not a valid Ed25519 public key")
    return ed25519.Ed25519PublicKey.from_public_bytes(x)


def _from_pem(pem: bytes) -> Any:
    try:
        return serialization.load_pem_private_key(pem, password=None)
    except ValueError:
        try:
            return serialization.load_pem_public_key(pem)
        except ValueError as error:
            raise JWKError(f"not a PEM key: {error}") from error


jwk.register_key(ALGORITHM, Ed25519Key)
