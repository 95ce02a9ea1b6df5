"""Where a Database gets its bearer token: fixed, or minted and refreshed from a key."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from loot.tokens import Key, mint, mint_account

REFRESH_BEFORE = 60.0  # seconds before expiry at which a fresh token is minted


class FixedToken:
    """A ready token (what a browser or an agent holds); never refreshed."""

    def __init__(self, token: str):
        self.token = token

    def current(self) -> str:
        return self.token


class MintedToken:
    """Mints tokens for one database from the application's key, and renews them before they expire."""

    def __init__(self, key: Key, name: str, tenant: str, *, ttl: int = 900,
                 clock: Callable[[], float] = time.time, **claims: Any):
        if ttl is None or not REFRESH_BEFORE < ttl < float("inf"):  # None would be a token that never expires
            raise ValueError(f"ttl must exceed {REFRESH_BEFORE:.0f} seconds so tokens can be renewed in time, and be "
                             "at most the routers' --max-token-lifetime (24 h unless set)")
        self.key, self.name, self.tenant, self.ttl, self.claims = key, name, tenant, ttl, claims
        self.clock = clock
        self._token = ""
        self._expires = 0.0

    def current(self) -> str:
        now = self.clock()
        if now > self._expires - REFRESH_BEFORE:
            self._token = self._mint(now)
            self._expires = now + self.ttl
        return self._token

    def _mint(self, now: float) -> str:
        return mint(self.key, self.name, self.tenant, ttl=self.ttl, now=now, **self.claims)


class AccountToken(MintedToken):
    """Mints account tokens (`scope: account`: docs/fleet.md) from the account's own key, renewed alike."""

    def __init__(self, key: Key, *, ttl: int = 900, clock: Callable[[], float] = time.time):
        super().__init__(key, "", "", ttl=ttl, clock=clock)

    def _mint(self, now: float) -> str:
        return mint_account(self.key, ttl=self.ttl, now=now)
