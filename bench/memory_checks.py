"""What the memory bounds cost a warm point select through `engine.run`, in process: the same call
with and without them, alternating rounds in one run. Without them means: no per-statement value
cap (`Sandbox.cap_values`), no size check of a row's values before they are copied
(`_Budget.check_values`), every statement kept for reuse (no `KeptStatements.may_keep`), and the rewrite
caches as functools.lru_cache instead of byte-bounded.

    python bench/memory_checks.py [--calls 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import statistics
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.engine_point_select import per_call_us, warm_point_select  # noqa: E402
from loot.shard import engine, memory, sandbox  # noqa: E402
from loot.shard.access import rewrite, statement  # noqa: E402


@contextlib.contextmanager
def without_memory_bounds() -> Iterator[None]:
    saved = (sandbox.Sandbox.cap_values, engine._Budget.check_values, memory.KeptStatements.may_keep,
             rewrite._cached_retarget, statement._cached_plan)
    sandbox.Sandbox.cap_values = lambda self, columns: None
    engine._Budget.check_values = lambda self, row, index: None
    memory.KeptStatements.may_keep = lambda self, conn, sql: True
    rewrite._cached_retarget = functools.lru_cache(maxsize=4096)(rewrite._retarget)
    statement._cached_plan = functools.lru_cache(maxsize=1024)(statement._plan)
    try:
        yield
    finally:
        (sandbox.Sandbox.cap_values, engine._Budget.check_values, memory.KeptStatements.may_keep,
         rewrite._cached_retarget, statement._cached_plan) = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        database, call = warm_point_select(root)
        call()
        bounded_us, unbounded_us = [], []
        for _ in range(args.rounds):
            bounded_us.append(per_call_us(call, args.calls))
            with without_memory_bounds():
                call()
                unbounded_us.append(per_call_us(call, args.calls))
        database.close()
    bounded, unbounded = statistics.median(bounded_us), statistics.median(unbounded_us)
    print(f"with memory bounds:    {bounded:.1f} µs/call (median of {args.rounds} rounds)")
    print(f"without memory bounds: {unbounded:.1f} µs/call")
    print(f"ratio without/with:    {unbounded / bounded:.3f}")


if __name__ == "__main__":
    main()
