"""Tenant-scoped point reads and single-row writes: PostgreSQL with row-level
security (one shared table, asyncpg) against Loot (a database per tenant,
grpc.aio through the router), same tenants, rows, concurrency and client
machine, in the same run.

    python bench/rls_vs_postgres.py [--duration 5] [--concurrency 16] [--tenants 100] [--sdk-direct]

`--sdk-direct`: the Loot side is the Python SDK (AsyncClient) routing each call straight to its
database's shard (one hop) instead of raw stubs through the router.

PostgreSQL side, as an application on a connection pool does it safely: each
call is one transaction that sets the tenant with set_config(..., true) (local
to the transaction) and runs the statement as a role subject to the policy.
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

from bench.closed_loop import closed_loop  # noqa: E402
from bench.loot_cluster import POINT_READ, POINT_WRITE, ROWS, SEED, kv_token, running_cluster  # noqa: E402
from bench.postgres import Postgres, running_postgres  # noqa: E402
from bench.stats import Load, ms, table  # noqa: E402
from tests.client import statement  # noqa: E402
from loot import AsyncClient  # noqa: E402
from loot.grpc_options import GRPC_OPTIONS  # noqa: E402
from loot.tokens import Key  # noqa: E402
from loot.v1 import database_pb2 as pb  # noqa: E402
from loot.v1 import database_pb2_grpc  # noqa: E402

APP_ROLE = "app"
PG_SETUP = f"""
CREATE ROLE {APP_ROLE} LOGIN;
CREATE TABLE kv (tenant TEXT NOT NULL, k INTEGER NOT NULL, v TEXT NOT NULL, PRIMARY KEY (tenant, k));
ALTER TABLE kv ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON kv
  USING (tenant = current_setting('app.tenant')) WITH CHECK (tenant = current_setting('app.tenant'));
GRANT SELECT, INSERT, UPDATE ON kv TO {APP_ROLE};
"""
PG_SEED = "INSERT INTO kv SELECT 'tenant-' || t, k, 'value ' || k FROM generate_series(0, $1 - 1) t, generate_series(1, $2) k"
PG_SET_TENANT = "SELECT set_config('app.tenant', $1, true)"
PG_READ = "SELECT v FROM kv WHERE k = $1"
PG_WRITE = "UPDATE kv SET v = $1 WHERE k = $2"
OPERATIONS = ("point read", "single-row write")
WARM_UP = 1.0


@dataclass(frozen=True)
class Measured:
    load: Load
    client_cpu_per_call: float


def tenant(number: int, tenants: int) -> str:
    return f"tenant-{number % tenants}"


async def postgres_calls(pg: Postgres, tenants: int, concurrency: int):
    """A pool for the application role and one call per operation, after checking RLS isolates."""
    admin = await asyncpg.connect(pg.dsn())
    await admin.execute(PG_SETUP)
    await admin.execute(PG_SEED, tenants, ROWS)
    await admin.close()
    pool = await asyncpg.create_pool(pg.dsn(user=APP_ROLE), min_size=concurrency, max_size=concurrency)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(PG_SET_TENANT, tenant(0, tenants))
        visible = await conn.fetchval("SELECT count(*) FROM kv")
        assert visible == ROWS, f"row-level security leaks: {visible} rows visible to one tenant"

    async def read(number: int) -> None:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(PG_SET_TENANT, tenant(number, tenants))
            assert await conn.fetchval(PG_READ, 1 + number % ROWS) is not None

    async def write(number: int) -> None:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(PG_SET_TENANT, tenant(number, tenants))
            assert await conn.execute(PG_WRITE, f"changed {number}", 1 + number % ROWS) == "UPDATE 1"

    return pool, dict(zip(OPERATIONS, (read, write), strict=True))


async def loot_calls(address: str, tenants: int):
    """A channel to the router and one call per operation, each tenant its own database."""
    key = Key.generate()
    auth = [(("authorization", f"Bearer {kv_token(key, tenant(n, tenants))}"),) for n in range(tenants)]
    channel = grpc.aio.insecure_channel(address, options=GRPC_OPTIONS)
    stub = database_pb2_grpc.DatabaseStub(channel)
    for metadata in auth:
        await stub.Execute(pb.ExecuteRequest(statement=statement(SEED, [ROWS])), metadata=metadata, timeout=30)

    async def read(number: int) -> None:
        request = pb.ExecuteRequest(statement=statement(POINT_READ, [1 + number % ROWS]))
        response = await stub.Execute(request, metadata=auth[number % tenants], timeout=30)
        assert len(response.result.rows) == 1

    async def write(number: int) -> None:
        request = pb.ExecuteRequest(statement=statement(POINT_WRITE, [f"changed {number}", 1 + number % ROWS]))
        response = await stub.Execute(request, metadata=auth[number % tenants], timeout=30)
        assert response.result.rows_written == 1

    return channel, dict(zip(OPERATIONS, (read, write), strict=True))


async def sdk_calls(address: str, tenants: int):
    """The Python SDK, routing directly (one hop to each tenant's shard), one call per operation."""
    key = Key.generate()
    client = AsyncClient(address, direct=True)
    databases = [client.open(kv_token(key, tenant(n, tenants))) for n in range(tenants)]
    for db in databases:
        await db.execute(SEED, [ROWS])

    async def read(number: int) -> None:
        assert len((await databases[number % tenants].execute(POINT_READ, [1 + number % ROWS])).rows) == 1

    async def write(number: int) -> None:
        result = await databases[number % tenants].execute(POINT_WRITE, [f"changed {number}", 1 + number % ROWS])
        assert result.rows_written == 1

    return client, dict(zip(OPERATIONS, (read, write), strict=True))


Results = dict[str, tuple[Measured, Measured]]  # operation -> (Loot, PostgreSQL)


async def measure(address: str, pg: Postgres, tenants: int, concurrency: int, duration: float,
                  sdk_direct: bool = False) -> Results:
    """operation -> (Loot, PostgreSQL), measured one after the other, operation by operation."""
    pool, pg_ops = await postgres_calls(pg, tenants, concurrency)
    channel, loot_ops = await (sdk_calls if sdk_direct else loot_calls)(address, tenants)
    try:
        return {operation: (await _client_measured(loot_ops[operation], concurrency, duration),
                            await _client_measured(pg_ops[operation], concurrency, duration))
                for operation in OPERATIONS}
    finally:
        await pool.close()
        await channel.close()


async def _client_measured(call, concurrency: int, duration: float) -> Measured:
    """The load, and this (client) process's CPU per call: when it nears one core per
    call rate, the client, not the server, sets the pace."""
    start = time.process_time()
    load = await closed_loop(call, concurrency=concurrency, duration=duration, warm_up=WARM_UP)
    calls = load.per_second * (duration + WARM_UP)
    return Measured(load, (time.process_time() - start) / calls)


def run(tenants: int, concurrency: int, duration: float, sdk_direct: bool = False) -> Results:
    with running_postgres() as pg, running_cluster() as cluster:
        return asyncio.run(measure(cluster.address, pg, tenants, concurrency, duration, sdk_direct))


def report(results: Results) -> str:
    rows = [(operation, loot.load.concurrency, f"{loot.load.per_second:,.0f}", f"{pg.load.per_second:,.0f}",
             f"**{ratio(loot, pg):.2f}x**", ms(loot.load.p50), ms(loot.load.p99), ms(pg.load.p50), ms(pg.load.p99),
             f"{loot.client_cpu_per_call * 1e6:.0f}", f"{pg.client_cpu_per_call * 1e6:.0f}")
            for operation, (loot, pg) in results.items()]
    return table(("operation", "concurrency", "Loot calls/s", "PostgreSQL calls/s", "Loot / PostgreSQL",
                  "Loot p50", "Loot p99", "PostgreSQL p50", "PostgreSQL p99",
                  "client CPU µs/call (Loot)", "client CPU µs/call (PostgreSQL)"), rows)


def ratio(loot: Measured, pg: Measured) -> float:
    return loot.load.per_second / pg.load.per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement (after 1 s warm-up)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--sdk-direct", action="store_true", help="Loot through the SDK, one hop to each shard")
    args = parser.parse_args()
    path = "the SDK routing directly" if args.sdk_direct else "raw stubs through the router"
    print(f"## Tenant-scoped point operations: Loot ({path}) vs PostgreSQL row-level security ({args.tenants} tenants)\n")
    print(report(run(args.tenants, args.concurrency, args.duration, args.sdk_direct)))


if __name__ == "__main__":
    main()
