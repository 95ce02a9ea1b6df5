"""Hand-built tokens for hostile-input tests: any header, any payload, any signature."""

from __future__ import annotations

import json
import time
from typing import Any

from loot.tokens import Key, mint
from loot.tokens.base64url import b64url
from loot.tokens.claims import COMPAT_DATES, ISSUER


def encode(part: dict[str, Any] | list[Any] | bytes | str) -> str:
    if isinstance(part, str):
        part = part.encode()
    return b64url(part if isinstance(part, bytes) else json.dumps(part).encode())


def claims(key: Key, **changes: Any) -> dict[str, Any]:
    """A valid payload for `key`; a change to None removes that claim."""
    now = int(time.time())
    payload = {"iss": ISSUER, "sub": key.account, "compat": COMPAT_DATES[-1], "iat": now, "exp": now + 600,
               "db": {"name": "app", "tenant": "hostile"}}
    payload.update(changes)
    return {k: v for k, v in payload.items() if v is not None}


def header(key: Key, **changes: Any) -> dict[str, Any]:
    return {"alg": key.alg, "typ": "JWT", "jwk": key.public_jwk, **changes}


def forge(head: dict[str, Any] | bytes | str, payload: dict[str, Any] | list[Any] | bytes | str, key: Key) -> str:
    """A token whose signature is `key`'s real signature over exactly these header and payload segments."""
    signing_input = f"{encode(head)}.{encode(payload)}"
    return f"{signing_input}.{b64url(key.jose_key.sign(signing_input.encode()))}"


def token_of_size(key: Key, size: int) -> str:
    """A valid token of `size` bytes, give or take 3 (base64 grows in steps of 4)."""
    pad = ""
    token = mint(key, "app", "big", pad=pad)
    while size - len(token) >= 4:
        pad += "x" * ((size - len(token)) * 3 // 4)
        token = mint(key, "app", "big", pad=pad)
    return token
