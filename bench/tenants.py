"""Provisioning isolated tenants and what an idle one costs: a PostgreSQL database
per tenant (CREATE DATABASE + its table) against Loot's first touch of a new
database (its first request, carrying the schema), in the same run.

    python bench/tenants.py [--loot-tenants 10000] [--postgres-tenants 150] [--concurrency 16]

CREATE DATABASE copies a template and syncs it, so PostgreSQL provisions only
a sample (a count or a time cap) and its rate is extrapolated to the Loot
count; the report says so. Loot touches every one of its tenants for real.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.loot_cluster import kv_token, running_cluster  # noqa: E402
from bench.postgres import Postgres, running_postgres  # noqa: E402
from bench.stats import size, table  # noqa: E402
from bench.system import disk_bytes, pss_bytes, rss_bytes  # noqa: E402
from tests.client import statement  # noqa: E402
from loot.cli.local_cluster import LocalCluster  # noqa: E402
from loot.grpc_options import GRPC_OPTIONS  # noqa: E402
from loot.tokens import Key  # noqa: E402
from loot.v1 import database_pb2 as pb  # noqa: E402
from loot.v1 import database_pb2_grpc  # noqa: E402

PG_TABLE = "CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT NOT NULL)"
FIRST_TOUCH = "SELECT count(*) FROM kv"
TIME_CAP = 150.0  # seconds either side may spend provisioning
CONNECTED_SAMPLE = 10  # PostgreSQL tenants whose backend memory is measured


@dataclass(frozen=True)
class Provisioning:
    tenants: int
    seconds: float
    disk_per_tenant: float
    memory_per_tenant: float

    @property
    def per_second(self) -> float:
        return self.tenants / self.seconds

    def seconds_for(self, tenants: int) -> float:
        return tenants / self.per_second


async def _pool_run(count: int, concurrency: int, one) -> tuple[int, float]:
    """Run one(i) for i in range(count) on `concurrency` workers, stopping at TIME_CAP;
    return (how many were done, seconds)."""
    numbers = iter(range(count))
    done = 0
    start = time.perf_counter()

    async def worker() -> None:
        nonlocal done
        for number in numbers:
            if time.perf_counter() - start > TIME_CAP:
                return
            await one(number)
            done += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done, time.perf_counter() - start


async def provision_postgres(pg: Postgres, count: int, concurrency: int) -> Provisioning:
    """A database per tenant with its table; also the memory of an idle connected backend."""
    before = disk_bytes(pg.data / "base")

    async def one(number: int) -> None:
        admin = await asyncpg.connect(pg.dsn())
        await admin.execute(f'CREATE DATABASE "tenant_{number}"')
        await admin.close()
        conn = await asyncpg.connect(pg.dsn(f"tenant_{number}"))
        await conn.execute(PG_TABLE)
        await conn.close()

    done, seconds = await _pool_run(count, concurrency, one)
    admin = await asyncpg.connect(pg.dsn())
    await admin.execute("CHECKPOINT")  # new databases' pages may still sit in shared buffers
    await admin.close()
    disk = (disk_bytes(pg.data / "base") - before) / done
    return Provisioning(done, seconds, disk, await _backend_memory(pg, min(done, CONNECTED_SAMPLE)))


async def _backend_memory(pg: Postgres, sample: int) -> float:
    """PSS of one idle backend per tenant database, after a query (what serving a tenant holds)."""
    connections = [await asyncpg.connect(pg.dsn(f"tenant_{n}")) for n in range(sample)]
    try:
        for conn in connections:
            await conn.fetchval("SELECT count(*) FROM kv")
        pids = [await conn.fetchval("SELECT pg_backend_pid()") for conn in connections]
        return sum(pss_bytes(pid) for pid in pids) / sample
    finally:
        for conn in connections:
            await conn.close()


async def provision_loot(cluster: LocalCluster, count: int, concurrency: int) -> Provisioning:
    """First touch of `count` new databases; tokens are minted beforehand (the application's work)."""
    key = Key.generate()
    tokens = [kv_token(key, f"new-{n}", name="tenants") for n in range(count)]
    request = pb.ExecuteRequest(statement=statement(FIRST_TOUCH))
    shards = [shard.process.pid for shard in cluster.shards.values()]
    async with grpc.aio.insecure_channel(cluster.address, options=GRPC_OPTIONS) as channel:
        stub = database_pb2_grpc.DatabaseStub(channel)
        await stub.Execute(request, metadata=(("authorization", f"Bearer {kv_token(key, 'warm-up')}"),), timeout=30)
        disk, memory = disk_bytes(cluster.data), sum(rss_bytes(pid) for pid in shards)

        async def one(number: int) -> None:
            response = await stub.Execute(request, metadata=(("authorization", f"Bearer {tokens[number]}"),), timeout=60)
            assert response.result.rows[0].values[0].integer == 0

        done, seconds = await _pool_run(count, concurrency, one)
    return Provisioning(done, seconds, (disk_bytes(cluster.data) - disk) / done,
                        (sum(rss_bytes(pid) for pid in shards) - memory) / done)


def run(loot_tenants: int, postgres_tenants: int, concurrency: int) -> tuple[Provisioning, Provisioning]:
    with running_postgres() as pg:
        postgres = asyncio.run(provision_postgres(pg, postgres_tenants, concurrency))
    with running_cluster() as cluster:
        loot = asyncio.run(provision_loot(cluster, loot_tenants, concurrency))
    return loot, postgres


def report(loot: Provisioning, postgres: Provisioning, target: int) -> str:
    speedup = postgres.seconds_for(target) / loot.seconds_for(target)
    rows = [
        ("tenants provisioned in this run", f"{loot.tenants:,}", f"{postgres.tenants:,}", ""),
        ("tenants per second", f"{loot.per_second:,.1f}", f"{postgres.per_second:,.1f}",
         f"**{loot.per_second / postgres.per_second:,.0f}x**"),
        (f"time for {target:,} tenants", _duration(loot, target), _duration(postgres, target),
         f"**{speedup:,.0f}x faster**"),
        ("disk per idle tenant", size(loot.disk_per_tenant), size(postgres.disk_per_tenant),
         f"{postgres.disk_per_tenant / loot.disk_per_tenant:,.0f}x less"),
        ("memory per idle tenant", size(loot.memory_per_tenant) + " (shards' RSS growth / tenants)",
         size(postgres.memory_per_tenant) + " (PSS of its idle backend)",
         f"{postgres.memory_per_tenant / loot.memory_per_tenant:,.0f}x less"),
    ]
    return table(("", "Loot (first touch)", "PostgreSQL (database per tenant)", "Loot advantage"), rows)


def _duration(provisioning: Provisioning, target: int) -> str:
    extrapolated = "" if provisioning.tenants >= target else " (extrapolated)"
    return f"{provisioning.seconds_for(target):,.1f} s" + extrapolated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loot-tenants", type=int, default=10_000)
    parser.add_argument("--postgres-tenants", type=int, default=150)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    loot, postgres = run(args.loot_tenants, args.postgres_tenants, args.concurrency)
    print(f"## Provisioning {args.loot_tenants:,} isolated tenants, and the cost of an idle one\n")
    print(report(loot, postgres, args.loot_tenants))


if __name__ == "__main__":
    main()
