"""Verified tokens, remembered: a repeated token costs a hash and a dictionary lookup, not a signature check.

An LRU (loot/byte_lru.py) bounded by entries and by the bytes the claims hold,
keyed by the token's SHA-256 (so a 64 KiB token is not kept twice as a key).
An entry is served only while the token is still valid (until `exp`
plus the clock skew `verify` allows, so cached and uncached answers agree) and
is dropped at its first lookup after that. Only successes are cached: a refusal
is always recomputed, so nothing a bad token does is remembered.
Not thread-safe: one cache per event loop (the router's is the module-level one
in loot/router/auth.py).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from typing import Generic, NamedTuple, Protocol, TypeVar

from loot.byte_lru import ByteLRU, footprint
from loot.tokens.claims import SKEW
from loot.tokens.delegated_tokens import verify_token


class Expiring(Protocol):
    @property
    def expires_at(self) -> float | None: ...


Verified = TypeVar("Verified", bound=Expiring)


class _Entry(NamedTuple):
    claims: Expiring
    valid_until: float
    size: int


class VerifiedTokens(Generic[Verified]):
    """`verify` returns Claims by default; a caller may pass one that returns what it
    derives from them (anything with `expires_at`), so that is computed once per token too."""

    def __init__(self, max_entries: int = 8192, max_bytes: int = 64 * 1024 * 1024,
                 verify: Callable[[str, float], Verified] = verify_token, clock: Callable[[], float] = time.time):
        self._verify = verify
        self._clock = clock
        self._entries: ByteLRU[bytes, _Entry] = ByteLRU(max_bytes, lambda digest, entry: entry.size, max_entries)

    def __len__(self) -> int:
        return len(self._entries)

    def verify(self, token: str) -> Verified:
        """Like loot.tokens.verify(token), remembering successes."""
        now = self._clock()
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        entry = self._entries.get(digest)
        if entry is not None:
            if now <= entry.valid_until:
                return entry.claims
            self._entries.pop(digest)
        claims = self._verify(token, now)
        valid_until = math.inf if claims.expires_at is None else claims.expires_at + SKEW
        # What it holds: the claims (and what the caller derived from them), as big as the token or bigger.
        self._entries.put(digest, _Entry(claims, valid_until, footprint(digest) + footprint(claims)))
        return claims
