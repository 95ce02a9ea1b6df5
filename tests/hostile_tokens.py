"""Hostile tokens and the refusal each must get (docs/tokens.md). Used by the unit and the end-to-end tests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from loot.tokens import Key, mint
from loot.tokens.base64url import b64url, b64url_decode
from tests.forge import claims, encode, forge, header

UNAUTHENTICATED, INVALID_ARGUMENT = "UNAUTHENTICATED", "INVALID_ARGUMENT"


@dataclass(frozen=True)
class Keys:
    es256: Key
    eddsa: Key
    other: Key


@dataclass(frozen=True)
class Case:
    name: str
    token: Callable[[Keys], str]
    code: str
    reason: str


def _segments(token: str) -> list[str]:
    return token.split(".")


def _with_segment(token: str, index: int, value: str) -> str:
    parts = _segments(token)
    parts[index] = value
    return ".".join(parts)


def _hs256_with_public_key(keys: Keys) -> str:
    # Key confusion: an HMAC "signed" with the bytes of the public key everyone can read.
    secret = keys.es256.jose_key.public_key().to_pem()
    signing_input = f"{encode(header(keys.es256, alg='HS256'))}.{encode(claims(keys.es256))}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def _rs256(keys: Keys) -> str:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = private.public_key().public_numbers()
    jwk = {"kty": "RSA", "n": b64url(numbers.n.to_bytes(256, "big")), "e": "AQAB"}
    signing_input = f"{encode({'alg': 'RS256', 'jwk': jwk})}.{encode(claims(keys.es256))}"
    signature = private.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url(signature)}"


def _p384_key(keys: Keys) -> str:
    numbers = ec.generate_private_key(ec.SECP384R1()).public_key().public_numbers()
    jwk = {"kty": "EC", "crv": "P-384", "x": b64url(numbers.x.to_bytes(48, "big")), "y": b64url(numbers.y.to_bytes(48, "big"))}
    return forge(header(keys.es256, jwk=jwk), claims(keys.es256), keys.es256)


def _off_curve(keys: Keys) -> str:
    y = int.from_bytes(b64url_decode(keys.es256.public_jwk["y"]), "big")
    jwk = {**keys.es256.public_jwk, "y": b64url(((y + 1) % 2**256).to_bytes(32, "big"))}
    return forge(header(keys.es256, jwk=jwk), claims(keys.es256), keys.es256)


def _small_order_ed25519(keys: Keys) -> str:
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(b"\x01" + bytes(31))}  # the identity point
    return forge(header(keys.eddsa, jwk=jwk), claims(keys.eddsa), keys.eddsa)


def _reencoded_payload(keys: Keys) -> str:
    # The same claims, serialised differently (spaces, other tenant): the signature covers the exact bytes.
    token = mint(keys.es256, "app", "alice")
    payload = json.loads(b64url_decode(_segments(token)[1]))
    payload["db"]["tenant"] = "mallory"
    return _with_segment(token, 1, b64url(json.dumps(payload, indent=1).encode()))


def _padded_signature(keys: Keys) -> str:
    token = mint(keys.es256, "app", "alice")
    return _with_segment(token, 2, base64.urlsafe_b64encode(b64url_decode(_segments(token)[2])).decode())


def _signed(payload: Callable[[Keys], object], key: str = "es256") -> Callable[[Keys], str]:
    return lambda keys: forge(header(getattr(keys, key)), payload(keys), getattr(keys, key))


def _now() -> int:
    return int(time.time())


def _raw(claim: str, json_text: str) -> Callable[[Keys], bytes]:
    """A payload whose `claim` is this JSON text exactly (numbers json.dumps could not write, deep nesting)."""
    def payload(keys: Keys) -> bytes:
        return json.dumps(claims(keys.es256, **{claim: "RAW"})).replace('"RAW"', json_text).encode()
    return payload


def _nested(depth: int) -> str:
    """Objects and arrays `depth` deep in all, counting the payload object itself."""
    return "[" * (depth - 1) + "]" * (depth - 1)


def _long_paths(keys: Keys) -> dict:
    # 20 objects under 1,000-character names, then 600 members: 600 paths of 20,000 characters, 12 MB in all.
    leaves: dict = {f"k{i}": 0 for i in range(600)}
    for level in range(20):
        leaves = {str(level) * 1000: leaves}
    return claims(keys.es256, deep=leaves)


CASES = [
    Case("two segments", lambda k: mint(k.es256, "app", "x").rsplit(".", 1)[0], UNAUTHENTICATED, "MALFORMED_TOKEN"),
    Case("four segments", lambda k: mint(k.es256, "app", "x") + ".AAAA", UNAUTHENTICATED, "MALFORMED_TOKEN"),
    Case("bad base64 header", lambda k: _with_segment(mint(k.es256, "app", "x"), 0, "eyJh!GciOiJFUzI1NiJ9"),
         UNAUTHENTICATED, "MALFORMED_TOKEN"),
    Case("standard base64 alphabet", lambda k: _with_segment(mint(k.es256, "app", "x"), 2, "+/" * 43),
         UNAUTHENTICATED, "MALFORMED_TOKEN"),
    Case("padded signature", _padded_signature, UNAUTHENTICATED, "MALFORMED_TOKEN"),
    Case("non-JSON header", lambda k: forge(b"{not json", claims(k.es256), k.es256), UNAUTHENTICATED, "MALFORMED_TOKEN"),
    Case("non-object header", lambda k: forge(b"[1, 2]", claims(k.es256), k.es256), UNAUTHENTICATED, "MALFORMED_TOKEN"),
    Case("non-UTF-8 header", lambda k: forge(b'{"alg":"\xff"}', claims(k.es256), k.es256), UNAUTHENTICATED, "MALFORMED_TOKEN"),
    Case("non-JSON payload", _signed(lambda k: b"not json"), UNAUTHENTICATED, "MALFORMED_TOKEN"),
    Case("non-object payload", _signed(lambda k: ["iss", "sub"]), UNAUTHENTICATED, "MALFORMED_TOKEN"),
    Case("duplicate payload member", _signed(lambda k: b'{"db": {"name": "a", "tenant": "b"}, "db": 1}'),
         UNAUTHENTICATED, "MALFORMED_TOKEN"),
    Case("NaN exp", _signed(lambda k: json.dumps(claims(k.es256, exp=float("nan"))).encode()),
         UNAUTHENTICATED, "MALFORMED_TOKEN"),
    Case("deeply nested payload", _signed(lambda k: b"[" * 5000 + b"]" * 5000), UNAUTHENTICATED, "MALFORMED_TOKEN"),
    Case("lone surrogate in tenant", _signed(lambda k: json.dumps(claims(k.es256, db={"name": "a", "tenant": "\ud800"})).encode()),
         UNAUTHENTICATED, "MALFORMED_TOKEN"),
    Case("alg none", lambda k: f"{encode(header(k.es256, alg='none'))}.{encode(claims(k.es256))}.",
         UNAUTHENTICATED, "BAD_ALGORITHM"),
    Case("HS256 keyed with the public key", _hs256_with_public_key, UNAUTHENTICATED, "BAD_ALGORITHM"),
    Case("RS256", _rs256, UNAUTHENTICATED, "BAD_ALGORITHM"),
    Case("alg is a list", lambda k: forge(header(k.es256, alg=["ES256"]), claims(k.es256), k.es256),
         UNAUTHENTICATED, "BAD_ALGORITHM"),
    Case("jwk members of the wrong type", lambda k: forge(header(k.es256, jwk={**k.es256.public_jwk, "x": ["a"]}),
                                                          claims(k.es256), k.es256), UNAUTHENTICATED, "BAD_KEY"),
    Case("alg missing", lambda k: forge({"jwk": k.es256.public_jwk}, claims(k.es256), k.es256), UNAUTHENTICATED, "BAD_ALGORITHM"),
    Case("typ not JWT", lambda k: forge(header(k.es256, typ="JOSE+JSON"), claims(k.es256), k.es256), UNAUTHENTICATED, "BAD_HEADER"),
    Case("crit header", lambda k: forge(header(k.es256, crit=["exp"]), claims(k.es256), k.es256), UNAUTHENTICATED, "BAD_HEADER"),
    Case("jwk missing", lambda k: forge({"alg": "ES256"}, claims(k.es256), k.es256), UNAUTHENTICATED, "BAD_KEY"),
    Case("ES256 header with an Ed25519 key", lambda k: forge(header(k.eddsa, alg="ES256"), claims(k.eddsa), k.eddsa),
         UNAUTHENTICATED, "KEY_ALGORITHM_MISMATCH"),
    Case("EdDSA header with a P-256 key", lambda k: forge(header(k.es256, alg="EdDSA"), claims(k.es256), k.es256),
         UNAUTHENTICATED, "KEY_ALGORITHM_MISMATCH"),
    Case("jwk with d", lambda k: forge(header(k.es256, jwk=k.es256.private_jwk()), claims(k.es256), k.es256),
         UNAUTHENTICATED, "PRIVATE_KEY_IN_TOKEN"),
    Case("Ed25519 jwk with d", lambda k: forge(header(k.eddsa, jwk=k.eddsa.private_jwk()), claims(k.eddsa), k.eddsa),
         UNAUTHENTICATED, "PRIVATE_KEY_IN_TOKEN"),
    Case("wrong curve", _p384_key, UNAUTHENTICATED, "KEY_ALGORITHM_MISMATCH"),
    Case("point not on the curve", _off_curve, UNAUTHENTICATED, "BAD_KEY"),
    Case("Ed25519 point of small order", _small_order_ed25519, UNAUTHENTICATED, "BAD_KEY"),
    Case("short coordinate", lambda k: forge(header(k.es256, jwk={**k.es256.public_jwk, "x": "AAAA"}), claims(k.es256), k.es256),
         UNAUTHENTICATED, "BAD_KEY"),
    Case("signed by another key", lambda k: forge(header(k.es256), claims(k.es256), k.other), UNAUTHENTICATED, "BAD_SIGNATURE"),
    Case("valid signature over a re-encoded payload", _reencoded_payload, UNAUTHENTICATED, "BAD_SIGNATURE"),
    Case("another key's sub", _signed(lambda k: claims(k.es256, sub=k.other.account)), UNAUTHENTICATED, "SUB_MISMATCH"),
    Case("missing sub", _signed(lambda k: claims(k.es256, sub=None)), UNAUTHENTICATED, "SUB_MISMATCH"),
    Case("missing iss", _signed(lambda k: claims(k.es256, iss=None)), UNAUTHENTICATED, "BAD_ISSUER"),
    Case("wrong iss", _signed(lambda k: claims(k.es256, iss="https://evil.example")), UNAUTHENTICATED, "BAD_ISSUER"),
    Case("expired", _signed(lambda k: claims(k.es256, exp=_now() - 31 - 5)), UNAUTHENTICATED, "TOKEN_EXPIRED"),
    Case("expired EdDSA", _signed(lambda k: claims(k.eddsa, exp=_now() - 120), "eddsa"), UNAUTHENTICATED, "TOKEN_EXPIRED"),
    Case("not yet valid", _signed(lambda k: claims(k.es256, nbf=_now() + 120)), UNAUTHENTICATED, "TOKEN_NOT_YET_VALID"),
    Case("issued in the future", _signed(lambda k: claims(k.es256, iat=_now() + 120)), UNAUTHENTICATED, "TOKEN_NOT_YET_VALID"),
    Case("non-numeric exp", _signed(lambda k: claims(k.es256, exp="tomorrow")), UNAUTHENTICATED, "BAD_TIME_CLAIM"),
    Case("boolean nbf", _signed(lambda k: claims(k.es256, nbf=True)), UNAUTHENTICATED, "BAD_TIME_CLAIM"),
    Case("infinite exp", _signed(_raw("exp", "1e400")), UNAUTHENTICATED, "MALFORMED_TOKEN"),
    Case("400-digit exp", _signed(_raw("exp", "9" * 400)), UNAUTHENTICATED, "BAD_TIME_CLAIM"),
    Case("400-digit nbf", _signed(_raw("nbf", "9" * 400)), UNAUTHENTICATED, "BAD_TIME_CLAIM"),
    Case("400-digit iat", _signed(_raw("iat", "9" * 400)), UNAUTHENTICATED, "BAD_TIME_CLAIM"),
    Case("-400-digit exp", _signed(_raw("exp", "-" + "9" * 400)), UNAUTHENTICATED, "BAD_TIME_CLAIM"),
    Case("exp after 9999", _signed(lambda k: claims(k.es256, exp=253_402_300_800)), UNAUTHENTICATED, "BAD_TIME_CLAIM"),
    Case("5000-digit claim", _signed(_raw("x", "9" * 5000)), UNAUTHENTICATED, "MALFORMED_TOKEN"),
    Case("1e309 claim", _signed(_raw("x", "1e309")), UNAUTHENTICATED, "MALFORMED_TOKEN"),
    Case("-1e309 in an array claim", _signed(_raw("x", "[1, -1e309]")), UNAUTHENTICATED, "MALFORMED_TOKEN"),
    Case("claim nested 970 deep", _signed(_raw("x", _nested(970))), UNAUTHENTICATED, "MALFORMED_TOKEN"),
    Case("claim nested 33 deep", _signed(_raw("x", _nested(33))), UNAUTHENTICATED, "MALFORMED_TOKEN"),
    Case("header nested 40 deep", lambda k: forge(json.dumps(header(k.es256, x=0)).replace('"x": 0', '"x": ' + _nested(40)),
                                                  claims(k.es256), k.es256), UNAUTHENTICATED, "MALFORMED_TOKEN"),
    Case("duplicate nested member", _signed(_raw("user", '{"id": "alice", "id": "bob"}')), UNAUTHENTICATED, "MALFORMED_TOKEN"),
    Case("no exp", _signed(lambda k: claims(k.es256, exp=None)), UNAUTHENTICATED, "MISSING_EXP"),
    Case("no exp and no iat", _signed(lambda k: claims(k.es256, exp=None, iat=None)), UNAUTHENTICATED, "MISSING_EXP"),
    Case("lives 24 h and a minute", _signed(lambda k: claims(k.es256, exp=_now() + 86_460)), UNAUTHENTICATED,
         "TOKEN_LIFETIME_TOO_LONG"),
    Case("issued long ago, lives 100 years", _signed(lambda k: claims(k.es256, iat=1_000_000_000, exp=4_200_000_000)),
         UNAUTHENTICATED, "TOKEN_LIFETIME_TOO_LONG"),
    Case("no iat, exp in two days", _signed(lambda k: claims(k.es256, iat=None, exp=_now() + 2 * 86_400)),
         UNAUTHENTICATED, "TOKEN_LIFETIME_TOO_LONG"),
    Case("unknown compat", _signed(lambda k: claims(k.es256, compat="2031-01-01")), INVALID_ARGUMENT, "UNKNOWN_COMPAT"),
    Case("missing compat", _signed(lambda k: claims(k.es256, compat=None)), INVALID_ARGUMENT, "UNKNOWN_COMPAT"),
    Case("missing db", _signed(lambda k: claims(k.es256, db=None)), INVALID_ARGUMENT, "BAD_DB_CLAIM"),
    Case("db is a string", _signed(lambda k: claims(k.es256, db="app/alice")), INVALID_ARGUMENT, "BAD_DB_CLAIM"),
    Case("db.name is a number", _signed(lambda k: claims(k.es256, db={"name": 7, "tenant": "t"})), INVALID_ARGUMENT, "BAD_DB_CLAIM"),
    Case("db.tenant missing", _signed(lambda k: claims(k.es256, db={"name": "app"})), INVALID_ARGUMENT, "BAD_DB_CLAIM"),
    Case("empty name", _signed(lambda k: claims(k.es256, db={"name": "", "tenant": "t"})), INVALID_ARGUMENT, "BAD_DB_CLAIM"),
    Case("257-byte tenant", _signed(lambda k: claims(k.es256, db={"name": "app", "tenant": "é" * 128 + "x"})),
         INVALID_ARGUMENT, "BAD_DB_CLAIM"),
    Case("readonly as a string", _signed(lambda k: claims(k.es256, readonly="true")), INVALID_ARGUMENT, "BAD_CLAIM"),
    Case("before as a list", _signed(lambda k: claims(k.es256, before=["DELETE FROM t"])), INVALID_ARGUMENT, "BAD_CLAIM"),
    Case("user.id both nested and dotted", _signed(lambda k: claims(k.es256, user={"id": "alice"}, **{"user.id": "bob"})),
         INVALID_ARGUMENT, "AMBIGUOUS_CLAIM"),
    Case("a dotted db.name beside db", _signed(lambda k: claims(k.es256, **{"db.name": "other"})),
         INVALID_ARGUMENT, "AMBIGUOUS_CLAIM"),
    Case("a.b.c three ways", _signed(lambda k: claims(k.es256, a={"b.c": 1}, **{"a.b": {"c": 2}})),
         INVALID_ARGUMENT, "AMBIGUOUS_CLAIM"),
    Case("12 MB of claim paths", _signed(_long_paths), INVALID_ARGUMENT, "CLAIM_PATHS_TOO_LONG"),
    Case("token over 64 KiB", lambda k: mint(k.es256, "app", "x", pad="x" * 50_000), UNAUTHENTICATED, "TOKEN_TOO_LARGE"),
]


# Authorization metadata the router must refuse before any token is parsed: (id, metadata, reason).
BAD_METADATA = [
    ("missing", (), "MISSING_TOKEN"),
    ("not bearer", (("authorization", "Basic dXNlcjpwYXNz"),), "BAD_AUTHORIZATION"),
    ("no token", (("authorization", "Bearer"),), "BAD_AUTHORIZATION"),
    ("blank token", (("authorization", "Bearer  "),), "BAD_AUTHORIZATION"),
    ("garbled", (("authorization", "Bearer !!garbled!!"),), "MALFORMED_TOKEN"),
    ("two headers", (("authorization", "Bearer a.b.c"), ("authorization", "Bearer d.e.f")), "BAD_AUTHORIZATION"),
]
