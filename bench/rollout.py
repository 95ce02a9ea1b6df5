"""A rollout (docs/fleet.md) over many databases on a 2-shard cluster, against the baseline of
converging the same databases with requests that carry the new claim (what lazy convergence costs
a client that touches every tenant itself), in the same run.

    python bench/rollout.py [--databases 10000] [--concurrency 8]

Prints databases per second for each and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.loot_cluster import running_cluster  # noqa: E402
from loot import AsyncClient, Client  # noqa: E402
from loot.tokens import Key  # noqa: E402

V1 = """CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT NOT NULL);
INSERT INTO _filters VALUES ('todos', 'all', 'true');
INSERT INTO _rules VALUES ('todos', 'write', 'all', 'true');"""
V2 = V1.replace("title TEXT NOT NULL", "title TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0")
V3 = V2.replace("done INTEGER NOT NULL DEFAULT 0", "done INTEGER NOT NULL DEFAULT 0, due TEXT")


async def touch_all(address: str, key: Key, tenants: list[str], schema: str, concurrency: int) -> float:
    """Each tenant's database sent one request carrying `schema`; the rate, databases/s."""
    gate = asyncio.Semaphore(concurrency)
    async with AsyncClient(address) as client:
        async def one(tenant: str) -> None:
            async with gate:
                await client.database("todo", tenant, key=key, schema=schema).execute("SELECT 1")

        started = time.perf_counter()
        await asyncio.gather(*(one(tenant) for tenant in tenants))
        return len(tenants) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--databases", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=8, help="per shard for the rollout, in all for requests")
    args = parser.parse_args()
    key, tenants = Key.generate(), [f"tenant-{i:06}" for i in range(args.databases)]
    with running_cluster(shards=2) as cluster:
        asyncio.run(touch_all(cluster.address, key, tenants, V1, args.concurrency))
        with Client(cluster.address, timeout=None) as client:
            started = time.perf_counter()
            *_, last = client.account(key).rollout("todo", V2, canary=10, concurrency=args.concurrency)
            rollout_rate = last.converged / (time.perf_counter() - started)
        assert (last.phase, last.converged) == ("done", args.databases), last
        requests_rate = asyncio.run(touch_all(cluster.address, key, tenants, V3, 2 * args.concurrency))
    print(f"{args.databases} databases on 2 shards, a new column each")
    print(f"  rollout (canary 10, {args.concurrency} per shard)       : {rollout_rate:8.0f} databases/s")
    print(f"  requests carrying the claim ({2 * args.concurrency} at once): {requests_rate:8.0f} databases/s")
    print(f"  rollout / requests: {rollout_rate / requests_rate:.2f}")


if __name__ == "__main__":
    main()
