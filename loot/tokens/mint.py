"""Minting tokens: what the application does with its own key."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from jose import jws

from loot.tokens.claims import ACCOUNT_SCOPE, COMPAT_DATES, ISSUER

if TYPE_CHECKING:  # keys.py imports this module when a Key mints
    from loot.tokens.delegated_key import DelegatedKey
    from loot.tokens.keys import Key


def mint(key: Key | DelegatedKey, name: str, tenant: str, *, ttl: float = 900, now: float | None = None,
         **claims: Any) -> str:
    """A signed token for database (key.account, name, tenant) plus any extra claims, valid for `ttl` seconds.
    Routers refuse tokens without `exp` or living longer than their --max-token-lifetime (24 h by default)."""
    payload = _payload(key, ttl, now)
    payload["db"] = {"name": name, "tenant": tenant}
    payload.update({k: v for k, v in claims.items() if v is not None})
    return _signed(key, payload)


def mint_account(key: Key, *, ttl: float = 900, now: float | None = None) -> str:
    """A signed account token (`scope: account`, no `db`) for key.account: it calls the account methods
    (docs/fleet.md) and nothing else. Only the account's own key signs one (docs/tokens.md)."""
    return _signed(key, {**_payload(key, ttl, now), "scope": ACCOUNT_SCOPE})


def _payload(key: Key | DelegatedKey, ttl: float, now: float | None) -> dict[str, Any]:
    if ttl is None or not 1 <= ttl < float("inf"):
        raise ValueError(f"ttl must be at least 1 second (got {ttl!r}): every token expires")
    issued = int(time.time() if now is None else now)
    return {"iss": ISSUER, "sub": key.account, "compat": COMPAT_DATES[-1], "iat": issued, "exp": issued + int(ttl)}


def _signed(key: Key | DelegatedKey, payload: dict[str, Any]) -> str:
    headers = {"typ": "JWT", "jwk": key.public_jwk}
    certificate = getattr(key, "certificate", None)  # an app key's (loot/tokens/delegated_key.py)
    if certificate is not None:
        headers["cert"] = certificate
    return jws.sign(payload, key.jose_key, headers=headers, algorithm=key.alg)
