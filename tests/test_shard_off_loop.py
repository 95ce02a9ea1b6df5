"""SQLite work runs on worker threads, never on the event loop: a long read leaves
the loop free, writes apply exactly once, and a refused request applies nothing.

(The shard branch first tried short reads on the event loop, the "quick path";
it was dropped when merging access control, see docs/shard.md.)"""

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
from tests.schemas import open_table

SCHEMA = open_table("CREATE TABLE t (x INTEGER)", "t")
CONTEXT = shard_pb2.Context(database_id=database_id("a", "app", "quick"), account="a", name="app", tenant="quick",
                            schema=SCHEMA)
SLOW_READ = "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 3000000) SELECT count(*) FROM c"


async def request(databases: Databases, *sql: str) -> engine.Outcome:
    statements = [pb.Statement(sql=text) for text in sql]
    work = functools.partial(engine.run, context=CONTEXT, statements=statements, deadline=None)
    return await databases.run(CONTEXT.database_id, work, SCHEMA)


def test_long_reads_leave_the_event_loop_free_and_writes_apply_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        databases = Databases(Storage(tmp_path))
        await request(databases, "SELECT 1")  # opens the database
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


def test_close_waits_for_work_a_cancelled_call_left_running(tmp_path: Path) -> None:
    """Past the shutdown grace, calls are cancelled while their SQLite work still runs on a worker thread."""
    async def scenario() -> None:
        databases = Databases(Storage(tmp_path))
        await request(databases, "INSERT INTO t VALUES (1)")
        running = asyncio.create_task(request(databases, SLOW_READ))
        await asyncio.sleep(0.05)
        running.cancel()
        await databases.close()  # must not close the connection under the running statement
        assert databases.stats()["open"] == 0

    asyncio.run(scenario())
    reopened = Storage(tmp_path).open(CONTEXT.database_id)
    assert reopened.conn.execute("SELECT count(*) FROM t").fetchone() == (1,)
    reopened.close()
