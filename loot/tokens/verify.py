"""Verifying tokens: the router's security boundary (docs/tokens.md).

Order matters: structure, header, embedded key and signature first, so that
nothing an unsigned payload says is looked at; then the claims. The signature is
checked with `cryptography` directly on the exact bytes that were signed (see
docs/tokens.md for why not through python-jose).
"""

from __future__ import annotations

import functools
import json
import math
import re
import time
from typing import Any

from loot.tokens.base64url import b64url_decode
from loot.tokens.claims import MAX_LIFETIME, Claims, claims_from
from loot.tokens.errors import shown, unauthenticated
from loot.tokens.jwk import KEY_TYPES, PublicKey, embedded_key

MAX_TOKEN_BYTES = 64 * 1024
# Objects and arrays inside one another, at most: the shard parses the claims again, on a deeper stack.
MAX_NESTING = 32
MAX_CACHED_HEADER = 1024  # an ES256 header with its jwk is about 250 bytes; bigger ones are parsed every time
_LONE_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def verify(token: str, now: float | None = None, max_lifetime: float = MAX_LIFETIME) -> Claims:
    """The claims of a valid token, or a Fault (UNAUTHENTICATED / INVALID_ARGUMENT) with a stable reason.
    `max_lifetime`: the longest `exp` - `iat` accepted, in seconds."""
    key, payload = verified_payload(token)
    return claims_from(payload, key.account, time.time() if now is None else now, max_lifetime)


def verified_payload(token: str) -> tuple[PublicKey, dict[str, Any]]:
    """The key a token embeds and its payload, once its structure, header and signature hold."""
    header_text, payload_text, signature_text = _segments(token)
    key = signer(header_text) if len(header_text) <= MAX_CACHED_HEADER else _signer(header_text)
    signature = _decode(signature_text, "signature")
    if not key.verifies(signature, f"{header_text}.{payload_text}".encode("ascii")):
        raise unauthenticated("BAD_SIGNATURE", "the signature does not verify with the key in the `jwk` header: the "
                              "token was altered or signed by another key")
    return key, _json_object(payload_text, "payload")


@functools.lru_cache(maxsize=4096)
def signer(header_text: str) -> PublicKey:
    """The key a header embeds, checked once per distinct header: an application signs many tokens with one key
    (and so one header). Refusals are not cached."""
    return _signer(header_text)


def _signer(header_text: str) -> PublicKey:
    header = _json_object(header_text, "header")
    return embedded_key(header.get("jwk"), _algorithm(header))


def _segments(token: str) -> list[str]:
    if len(token) > MAX_TOKEN_BYTES:
        raise unauthenticated("TOKEN_TOO_LARGE", f"the token is {len(token)} bytes; at most {MAX_TOKEN_BYTES} are "
                              "accepted", limit=MAX_TOKEN_BYTES)
    parts = token.split(".")
    if len(parts) != 3 or not token.isascii():
        raise unauthenticated("MALFORMED_TOKEN", "a token is three base64url segments separated by dots "
                              f"(got {len(parts)} segments)")
    return parts


def _decode(segment: str, part: str) -> bytes:
    try:
        return b64url_decode(segment)
    except ValueError:
        raise unauthenticated("MALFORMED_TOKEN", f"the token {part} is not unpadded base64url") from None


def _json_object(segment: str, part: str) -> dict[str, Any]:
    try:
        text = _decode(segment, part).decode("utf-8")
        value = json.loads(text, object_pairs_hook=_unique_members, parse_constant=_no_constant,
                           parse_float=_finite)
        if _LONE_SURROGATE_ESCAPE.search(text):
            json.dumps(value, ensure_ascii=False).encode("utf-8")  # UnicodeEncodeError on a lone surrogate
    except ValueError:  # includes UnicodeError and JSONDecodeError
        raise unauthenticated("MALFORMED_TOKEN", f"the token {part} is not UTF-8 JSON without duplicate "
                              "members or numbers out of a double's range") from None
    except RecursionError:
        raise unauthenticated("MALFORMED_TOKEN", f"the token {part} nests too deeply") from None
    if not isinstance(value, dict):
        raise unauthenticated("MALFORMED_TOKEN", f"the token {part} must be a JSON object")
    # The brackets in the text bound the nesting from above: most tokens have a few and skip the walk.
    if text.count("{") + text.count("[") > MAX_NESTING and _nesting(value) > MAX_NESTING:
        raise unauthenticated("MALFORMED_TOKEN", f"the token {part} nests objects and arrays more than {MAX_NESTING} "
                              "deep", limit=MAX_NESTING)
    return value


def _nesting(value: Any) -> int:
    """How deep objects and arrays nest in `value` (1 for a flat object), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Two parsers must not read two different tokens from one (RFC 7515 §5.2: reject duplicates).
    members = dict(pairs)
    if len(members) != len(pairs):
        raise ValueError("duplicate member")
    return members


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    # 1e400 would parse as infinity, which the router could then only forward as the non-JSON `Infinity`.
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def _algorithm(header: dict[str, Any]) -> str:
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in KEY_TYPES:
        raise unauthenticated("BAD_ALGORITHM", f"alg {shown(alg)} is not accepted; sign with ES256 (P-256) or EdDSA "
                              "(Ed25519)", alg=str(alg)[:64])
    typ = header.get("typ", "JWT")
    if not isinstance(typ, str) or typ.upper() != "JWT":
        raise unauthenticated("BAD_HEADER", f"`typ` must be JWT when present (got {shown(typ)})")
    if "crit" in header:
        raise unauthenticated("BAD_HEADER", "the header marks extensions as critical (`crit`); none are supported")
    return alg
