"""The verified-token cache: hits skip the signature check, never outlive a token, stay bounded."""

from __future__ import annotations

import pytest

from loot.status import Fault
from loot.tokens import Claims, Key, mint, verify
from loot.tokens.cache import VerifiedTokens
from loot.internal.v1 import shard_pb2
from loot.router.admission import admit


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class CountingVerify:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, token: str, now: float) -> Claims:
        self.calls += 1
        return verify(token, now)


@pytest.fixture(scope="module")
def key() -> Key:
    return Key.generate()


def cache(max_entries: int = 100, max_bytes: int = 1 << 20, now: float = 1_800_000_000):
    counting, clock = CountingVerify(), Clock(now)
    return VerifiedTokens(max_entries, max_bytes, verify=counting, clock=clock), counting, clock


def test_a_repeated_token_is_verified_once(key: Key) -> None:
    tokens, counting, clock = cache()
    token = mint(key, "app", "t", now=clock.now)
    first, second = tokens.verify(token), tokens.verify(token)
    assert first is second and counting.calls == 1


def test_an_entry_ends_when_its_token_expires(key: Key) -> None:
    tokens, counting, clock = cache()
    token = mint(key, "app", "t", ttl=60, now=clock.now)
    tokens.verify(token)
    clock.now += 60 + 30  # exp plus the skew verify() allows: still valid, still cached
    tokens.verify(token)
    assert counting.calls == 1
    clock.now += 1
    with pytest.raises(Fault) as refused:
        tokens.verify(token)
    assert refused.value.reason == "TOKEN_EXPIRED" and len(tokens) == 0 and counting.calls == 2


def test_refusals_are_not_cached(key: Key) -> None:
    tokens, counting, clock = cache()
    token = mint(key, "app", "t", ttl=10, now=clock.now - 100)
    for _ in range(2):
        with pytest.raises(Fault):
            tokens.verify(token)
    assert counting.calls == 2 and len(tokens) == 0


def test_least_recently_used_entries_are_evicted(key: Key) -> None:
    tokens, counting, clock = cache(max_entries=2)
    a, b, c = (mint(key, "app", tenant, now=clock.now) for tenant in "abc")
    tokens.verify(a), tokens.verify(b), tokens.verify(a), tokens.verify(c)  # b is the least recently used
    assert len(tokens) == 2 and counting.calls == 3
    tokens.verify(a)
    assert counting.calls == 3
    tokens.verify(b)
    assert counting.calls == 4


def test_the_cache_is_bounded_in_bytes_of_what_it_holds(key: Key) -> None:
    # Each entry holds the verified claims, a 3,000-character string among them: 20 such entries at most.
    tokens, counting, clock = cache(max_bytes=20 * 4000)
    for tenant in range(40):
        tokens.verify(mint(key, "app", str(tenant), pad="x" * 3000, now=clock.now))
    assert 10 <= len(tokens) < 20


def test_router_admission_is_derived_once_per_token() -> None:
    key = Key.generate()
    cache = VerifiedTokens(verify=admit)
    token = mint(key, "app", "alice", schema="CREATE TABLE t (x)", user={"id": 7})
    first = cache.verify(token)
    assert cache.verify(token) is first, "a repeated token reuses the admission, shard Context included"
    context = shard_pb2.ShardExecuteRequest.FromString(first.context_field).context
    assert (context.account, context.name, context.tenant, context.schema) == (key.account, "app", "alice", "CREATE TABLE t (x)")
    assert '"user":{"id":7}' in context.claims_json
