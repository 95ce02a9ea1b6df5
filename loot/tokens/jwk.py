"""JWKs: RFC 7638 thumbprints (the account), and the public key a token embeds."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from loot.tokens.base64url import b64url, b64url_decode
from loot.tokens.ed25519 import is_valid_public_key
from loot.tokens.errors import shown, unauthenticated

# RFC 7638 §3.2: the required members of each key type, in lexicographic order.
_REQUIRED = {"EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x"), "RSA": ("e", "kty", "n")}
# Members that only private (or symmetric) JWKs have (RFC 7518 §6).
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
# The one key type and curve each accepted alg signs with.
KEY_TYPES = {"ES256": ("EC", "P-256"), "EdDSA": ("OKP", "Ed25519")}
_ES256 = ec.ECDSA(hashes.SHA256())


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 SHA-256 thumbprint, base64url without padding."""
    members = {name: jwk[name] for name in _REQUIRED[jwk["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return b64url(hashlib.sha256(canonical.encode()).digest())


class PublicKey:
    """A token's embedded key, checked once: verifies signatures and names the account."""

    def __init__(self, account: str, check: Callable[[bytes, bytes], None]):
        self.account = account
        self._check = check

    def verifies(self, signature: bytes, signed: bytes) -> bool:
        if len(signature) != 64:  # both ES256 (r || s) and Ed25519 signatures are 64 bytes
            return False
        try:
            self._check(signature, signed)
            return True
        except InvalidSignature:
            return False


def embedded_key(jwk: Any, alg: str) -> PublicKey:
    """The public key of a token header's `jwk` for `alg`, or UNAUTHENTICATED saying what is wrong with it."""
    if not isinstance(jwk, dict):
        raise unauthenticated("BAD_KEY", "the token header must embed the signer's public key as `jwk` (an object)")
    private = sorted(PRIVATE_MEMBERS & jwk.keys())
    if private:
        raise unauthenticated("PRIVATE_KEY_IN_TOKEN", f"the `jwk` header holds private key members "
                              f"({', '.join(private)}): embed the public key only, and treat this private key as leaked")
    kty, crv = KEY_TYPES[alg]
    if jwk.get("kty") != kty or jwk.get("crv") != crv:
        raise unauthenticated("KEY_ALGORITHM_MISMATCH", f"alg {alg} needs a key with kty {kty} and crv {crv}; "
                              f"the `jwk` has kty {shown(jwk.get('kty'))} and crv {shown(jwk.get('crv'))}", alg=alg)
    if jwk.get("alg", alg) != alg or jwk.get("use", "sig") != "sig":
        raise unauthenticated("KEY_ALGORITHM_MISMATCH", f"the `jwk` is marked for other use than {alg} signatures",
                              alg=alg)
    coordinates = (jwk.get("x"), jwk.get("y")) if kty == "EC" else (jwk.get("x"),)
    if not all(isinstance(c, str) for c in coordinates):
        raise unauthenticated("BAD_KEY", f"the {crv} `jwk` needs its coordinates as base64url strings")
    return _parse(alg, *coordinates)


def _parse(alg: str, *coordinates: str) -> PublicKey:
    try:
        raw = [b64url_decode(c) for c in coordinates]
    except ValueError:
        raise unauthenticated("BAD_KEY", "the `jwk` coordinates are not unpadded base64url") from None
    if alg == "ES256":
        return _p256(*coordinates, *raw)
    return _ed25519(coordinates[0], raw[0])


def _p256(x: str, y: str, raw_x: bytes, raw_y: bytes) -> PublicKey:
    if len(raw_x) != 32 or len(raw_y) != 32:
        raise unauthenticated("BAD_KEY", "P-256 `jwk` coordinates must be 32 bytes each (RFC 7518 §6.2.1)")
    try:
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + raw_x + raw_y)
    except ValueError:
        raise unauthenticated("BAD_KEY", "the `jwk` is not a point on curve P-256") from None

    def check(signature: bytes, signed: bytes) -> None:
        r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        key.verify(encode_dss_signature(r, s), signed, _ES256)

    return PublicKey(thumbprint({"kty": "EC", "crv": "P-256", "x": x, "y": y}), check)


def _ed25519(x: str, raw_x: bytes) -> PublicKey:
    if not is_valid_public_key(raw_x):
        raise unauthenticated("BAD_KEY", "the `jwk` is not a valid Ed25519 public key (32 bytes, a curve point "
                              "of large order)")
    key = ed25519.Ed25519PublicKey.from_public_bytes(raw_x)
    return PublicKey(thumbprint({"kty": "OKP", "crv": "Ed25519", "x": x}), key.verify)  # verify(signature, signed)
