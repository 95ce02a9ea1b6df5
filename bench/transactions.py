"""A read-modify-write of three statements as one interactive transaction, against the same as three
Executes (no atomicity) and as one Batch (atomic, but decided before it runs), in the same run.

    python bench/transactions.py [--duration 3] [--tenants 8]

One worker per tenant (a transaction holds its database, so workers on one database would only queue):
calls/s and p50/p99 of one read-modify-write, and its rate as a share of the three Executes'.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.closed_loop import closed_loop  # noqa: E402
from bench.loot_cluster import KV_SCHEMA, POINT_READ, POINT_WRITE, ROWS, SEED, running_cluster  # noqa: E402
from bench.stats import Load, ms, table  # noqa: E402
from loot import AsyncClient, Key  # noqa: E402


async def measure(address: str, tenants: int, duration: float) -> dict[str, Load]:
    key = Key.generate()
    async with AsyncClient(address) as client:
        databases = [client.database("bench", tenant=f"rmw-{i}", key=key, schema=KV_SCHEMA) for i in range(tenants)]
        for db in databases:
            await db.execute(SEED, [ROWS])

        async def executes(db, k: int) -> None:
            value = (await db.execute(POINT_READ, [k])).scalar()
            await db.execute(POINT_WRITE, [value + "!" if len(value) < 50 else "v", k])
            await db.execute(POINT_READ, [k])

        async def batch(db, k: int) -> None:
            await db.batch([(POINT_READ, [k]), (POINT_WRITE, ["v", k]), (POINT_READ, [k])])

        async def transaction(db, k: int) -> None:
            async with db.transaction() as tx:
                value = (await tx.execute(POINT_READ, [k])).scalar()
                await tx.execute(POINT_WRITE, [value + "!" if len(value) < 50 else "v", k])
                await tx.execute(POINT_READ, [k])

        loads = {}
        for name, shape in (("three Executes", executes), ("one Batch", batch), ("one transaction", transaction)):
            loads[name] = await closed_loop(lambda n, shape=shape: shape(databases[n % tenants], n % ROWS + 1),
                                            concurrency=tenants, duration=duration, warm_up=1.0)
        return loads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--tenants", type=int, default=8)
    args = parser.parse_args()
    with running_cluster() as cluster:
        loads = asyncio.run(measure(cluster.address, args.tenants, args.duration))
    baseline = loads["three Executes"].per_second
    print(table(["read-modify-write as", "calls/s", "p50", "p99", "rate vs three Executes"],
                [(name, f"{load.per_second:.0f}", ms(load.p50), ms(load.p99), f"{load.per_second / baseline:.2f}")
                 for name, load in loads.items()]))


if __name__ == "__main__":
    main()
