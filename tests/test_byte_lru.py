"""The byte-bounded LRU behind every cache keyed by what clients send, and the shard's memory budget."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from loot.byte_lru import ByteLRU, footprint, memoize
from loot.secret import new_secret
from loot.shard import memory
from loot.shard.access import install, rewrite, statement
from loot.shard.limits import MIB, Limits
from loot.shard.schema import claim_text, history
from loot.shard.templates import TEMPLATE_BYTES


def test_entries_are_evicted_least_recently_used_first_once_past_the_byte_bound() -> None:
    cache: ByteLRU[str, str] = ByteLRU(300, size=lambda key, value: len(value))
    for key in "abc":
        cache.put(key, "x" * 70)
    cache.get("a")
    cache.put("d", "x" * 70)  # 280 bytes: all fit
    cache.put("e", "x" * 70)  # 350: b, the least recently used, goes
    assert [cache.get(key) is not None for key in "abcde"] == [True, False, True, True, True]
    assert cache.bytes == 280


def test_an_entry_over_a_quarter_of_the_bound_is_not_kept() -> None:
    cache: ByteLRU[str, str] = ByteLRU(400, size=lambda key, value: len(value))
    cache.put("small", "x" * 100)
    cache.put("big", "x" * 101)
    assert cache.get("big") is None and cache.get("small") is not None


def test_replacing_an_entry_counts_its_bytes_once() -> None:
    cache: ByteLRU[str, str] = ByteLRU(1000, size=lambda key, value: len(value))
    cache.put("a", "x" * 100)
    cache.put("a", "x" * 50)
    assert cache.bytes == 50 and len(cache) == 1


def test_memoize_caches_results_by_arguments_within_its_bytes() -> None:
    calls = []

    @memoize(64 * 1024)
    def double(text: str) -> str:
        calls.append(text)
        return text * 2

    assert double("ab") == double("ab") == "abab" and calls == ["ab"]
    for n in range(1000):
        double(f"{n:0100}")
    assert double.cache.bytes <= 64 * 1024 and len(double.cache) < 1000


def test_footprint_counts_contents_and_survives_deep_nesting() -> None:
    assert footprint(("x" * 1000, ["y" * 1000])) > 2000
    nested: dict = {}
    inner = nested
    for _ in range(5000):  # deeper than Python recurses
        inner["a"] = {}
        inner = inner["a"]
    assert footprint(nested) > 5000


def test_the_shards_caches_together_fit_the_budgets_share_for_caches() -> None:
    bounds = [rewrite._cached_retarget.cache.max_bytes, statement._cached_plan.cache.max_bytes,
              install._planned.max_bytes, history._shared.max_bytes, claim_text.in_main.cache.max_bytes, TEMPLATE_BYTES]
    assert sum(bounds) <= memory.CACHE_BYTES


def test_the_default_limits_fit_the_default_budget() -> None:
    budget, limits = memory.plan(Limits(), threads=8), Limits()
    statements = limits.open_databases * memory.STATEMENTS_PER_CONNECTION
    assert budget.page_caches + statements + 8 * limits.result_bytes * memory.STATEMENT_COPIES <= budget.sqlite_heap


@pytest.mark.cluster
def test_a_shard_refuses_to_start_with_a_budget_its_limits_do_not_fit(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "loot", "shard", "--name", "shard-0", "--shards", "shard-0", "--port", "0",
               "--data", str(tmp_path), "--memory-mib", "256"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60,
                          env={"LOOT_CLUSTER_SECRET": new_secret(), "PATH": "/usr/bin:/bin"})
    assert done.returncode != 0
    assert "--memory-mib 256 is too small" in done.stderr and "--result-bytes" in done.stderr


@pytest.mark.parametrize("result_mib, request_mib, open_databases", [(1, 16, 16), (2, 16, 32)])
def test_a_smaller_budget_fits_smaller_limits(result_mib: int, request_mib: int, open_databases: int) -> None:
    limits = Limits(memory_mib=512, result_bytes=result_mib * MIB, request_bytes=request_mib * MIB,
                    open_databases=open_databases)
    assert memory.plan(limits, threads=8).sqlite_heap > 0
