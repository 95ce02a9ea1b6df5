"""Touch many distinct databases through one shard process's gRPC service and
report its memory (against a budget) and the disk bytes per empty database.

    python bench/many_databases.py [--databases 100000] [--budget-mib 512] [--concurrency 32]

The open-database cache bounds memory: RSS must stay under the budget however
many databases are touched.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.shard_process import ShardProcess, channel, closed_loop, execute_request, raw_execute  # noqa: E402
from loot.secret import SECRET_HEADER  # noqa: E402


async def touch_all(shard: ShardProcess, count: int, concurrency: int) -> tuple[float, int]:
    """Touch `count` new databases; return (databases/s, peak RSS sampled along the way)."""
    metadata = ((SECRET_HEADER, shard.secret),)
    peak = 0

    async with channel(shard.address) as chan:
        execute = raw_execute(chan)

        async def touch(i: int) -> None:
            nonlocal peak
            await execute(execute_request(f"tenant-{i}", "SELECT 1"), metadata=metadata)
            if i % 1000 == 0:
                peak = max(peak, shard.rss_bytes())

        rate = await closed_loop(touch, count, concurrency)
    return rate, max(peak, shard.rss_bytes("VmHWM"))


def disk_bytes(data: Path) -> int:
    return sum(p.stat().st_blocks * 512 for p in data.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--databases", type=int, default=100_000)
    parser.add_argument("--budget-mib", type=int, default=512)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data:
        shard = ShardProcess(Path(data))
        try:
            started_rss = shard.rss_bytes()
            rate, peak = asyncio.run(touch_all(shard, args.databases, args.concurrency))
        finally:
            shard.stop()
        on_disk = disk_bytes(Path(data))
    mib = 1024 * 1024
    print(f"{args.databases} distinct databases touched at {rate:.0f}/s")
    print(f"  shard RSS: {started_rss / mib:.0f} MiB at start, peak {peak / mib:.0f} MiB; "
          f"budget {args.budget_mib} MiB -> {'OK' if peak < args.budget_mib * mib else 'OVER BUDGET'} "
          f"({peak / (args.budget_mib * mib):.2f} of budget)")
    print(f"  disk: {on_disk / args.databases:.0f} bytes per empty database (allocated blocks, closed files)")


if __name__ == "__main__":
    main()
