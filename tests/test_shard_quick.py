"""The quick path: short reads on an open database run right on the event loop;
anything that writes or runs long gives up and runs again on a worker thread,
with the same result and nothing applied twice."""

from __future__ import annotations

import asyncio
import functools
import time
from pathlib import Path

import grpc
import pytest

from loot.ids import database_id
from loot.internal.v1 import shard_pb2
from loot.status import Fault
from loot.v1 import database_pb2 as pb
from shard import engine
from shard.databases import Databases
from shard.storage import Storage

SCHEMA = "CREATE TABLE t (x INTEGER)"
CONTEXT = shard_pb2.Context(database_id=database_id("a", "app", "quick"), account="a", name="app", tenant="quick",
                            schema=SCHEMA)
SLOW_READ = "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 3000000) SELECT count(*) FROM c"


async def request(databases: Databases, *sql: str) -> engine.Outcome:
    statements = [pb.Statement(sql=text) for text in sql]
    work = functools.partial(engine.run, context=CONTEXT, statements=statements, deadline=None)
    return await databases.run(CONTEXT.database_id, work, SCHEMA, functools.partial(work, quick=True))


def test_writes_and_long_reads_leave_the_quick_path_and_apply_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        databases = Databases(Storage(tmp_path))
        await request(databases, "SELECT 1")  # opens the database: later requests may be quick
        await request(databases, "INSERT INTO t VALUES (1)")
        outcome = await request(databases, "SELECT count(*), sum(x) FROM t")
        assert [v.integer for v in outcome.results[0].rows[0].values] == [1, 1], "the insert ran exactly once"

        gaps = []

        async def ticker() -> None:
            while True:
                started = time.monotonic()
                await asyncio.sleep(0.005)
                gaps.append(time.monotonic() - started)

        ticking = asyncio.create_task(ticker())
        started = time.monotonic()
        outcome = await request(databases, SLOW_READ)
        took = time.monotonic() - started
        ticking.cancel()
        assert outcome.results[0].rows[0].values[0].integer == 3000000
        assert max(gaps) < took / 2, "the long read blocked the event loop instead of moving to a worker"

        with pytest.raises(Fault) as refused:
            await request(databases, "SELECT 1; INSERT INTO t VALUES (2)")
        assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
        outcome = await request(databases, "SELECT count(*) FROM t")
        assert outcome.results[0].rows[0].values[0].integer == 1
        await databases.close()

    asyncio.run(scenario())
