"""Verifying tokens: the router's security boundary (SPEC §2).

Every failure is a Fault carrying UNAUTHENTICATED (who you are) or
INVALID_ARGUMENT (what you asked for) and a stable reason.
"""

from __future__ import annotations

import json
import time
from typing import Any

import grpc
from jose import jws
from jose.exceptions import JOSEError

from loot.status import Fault
from loot.tokens.claims import COMPAT_DATES, ISSUER, Claims
from loot.tokens.jwk import b64url_decode, thumbprint

SKEW = 30.0
MAX_NAME_BYTES = 256


def unauthenticated(reason: str, message: str) -> Fault:
    return Fault(grpc.StatusCode.UNAUTHENTICATED, reason, message)


def invalid(reason: str, message: str) -> Fault:
    return Fault(grpc.StatusCode.INVALID_ARGUMENT, reason, message)


def verify(token: str, now: float | None = None) -> Claims:
    header = _header(token)
    jwk = header.get("jwk")
    if header.get("alg") != "ES256":
        raise unauthenticated("BAD_ALGORITHM", f"alg {header.get('alg')!r} is not accepted; use ES256")
    if not isinstance(jwk, dict) or jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise unauthenticated("BAD_KEY", "the token header must embed the public P-256 key as `jwk`")
    if "d" in jwk:
        raise unauthenticated("PRIVATE_KEY_IN_TOKEN", "the `jwk` header holds a private key: embed the public key only")
    try:
        payload = json.loads(jws.verify(token, jwk, algorithms=["ES256"]))
    except (JOSEError, ValueError) as error:
        raise unauthenticated("BAD_SIGNATURE", f"the signature does not verify with the embedded key: {error}")
    if not isinstance(payload, dict):
        raise unauthenticated("BAD_TOKEN", "the token payload is not a JSON object")
    account = thumbprint(jwk)
    _check_claims(payload, account, time.time() if now is None else now)
    db = payload["db"]
    return Claims(account, db["name"], db["tenant"], payload, payload.get("exp"))


def _header(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3:
        raise unauthenticated("BAD_TOKEN", "a token is three base64url segments separated by dots")
    try:
        header = json.loads(b64url_decode(parts[0]))
    except ValueError:
        raise unauthenticated("BAD_TOKEN", "the token header is not base64url-encoded JSON")
    if not isinstance(header, dict):
        raise unauthenticated("BAD_TOKEN", "the token header is not a JSON object")
    return header


def _check_claims(payload: dict[str, Any], account: str, now: float) -> None:
    if payload.get("iss") != ISSUER:
        raise unauthenticated("BAD_ISSUER", f"`iss` must be {ISSUER!r}")
    if payload.get("sub") != account:
        raise unauthenticated("SUB_MISMATCH", f"`sub` must be the key's thumbprint {account!r}")
    exp, nbf = payload.get("exp"), payload.get("nbf")
    if exp is not None and now > exp + SKEW:
        raise unauthenticated("TOKEN_EXPIRED", "the token has expired: mint a new one")
    if nbf is not None and now < nbf - SKEW:
        raise unauthenticated("TOKEN_NOT_YET_VALID", "the token is not valid yet (`nbf` is in the future)")
    if payload.get("compat") not in COMPAT_DATES:
        raise invalid("UNKNOWN_COMPAT", f"`compat` must be one of {', '.join(COMPAT_DATES)}")
    db = payload.get("db")
    if not isinstance(db, dict):
        raise invalid("BAD_DB_CLAIM", "`db` must be an object with `name` and `tenant`")
    for part in ("name", "tenant"):
        value = db.get(part)
        if not isinstance(value, str) or not value or len(value.encode()) > MAX_NAME_BYTES:
            raise invalid("BAD_DB_CLAIM", f"`db.{part}` must be a non-empty string of at most {MAX_NAME_BYTES} bytes")
