"""Where SQLite work runs: short reads on an open database inline on the event
loop, everything else on worker threads. A long read leaves the loop free,
writes apply exactly once, a refused request applies nothing, and an inline
attempt gives up (changing nothing) on whatever may write, wait or take long."""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from pathlib import Path

import apsw
import grpc
import pytest

from loot.ids import database_id
from loot.internal.v1 import shard_pb2
from loot.status import Fault
from loot.v1 import database_pb2 as pb
from loot.shard import engine
from loot.values import to_value
from loot.shard.databases import Databases, RunOnWorker
from loot.shard.limits import Limits
from loot.shard.sandbox import BUSY_MS
from loot.shard.storage import Storage
from tests.schemas import open_table

SCHEMA = open_table("CREATE TABLE t (x INTEGER)", "t")
CONTEXT = shard_pb2.Context(database_id=database_id("a", "app", "quick"), account="a", name="app", tenant="quick",
                            schema=SCHEMA)
SLOW_READ = "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 3000000) SELECT count(*) FROM c"


async def request(databases: Databases, *sql: str, threads: list[str] | None = None) -> engine.Outcome:
    """As the service runs a request: inline first, then on a worker; `threads` collects where it ran."""
    statements = [pb.Statement(sql=text) for text in sql]
    run = functools.partial(engine.run, context=CONTEXT, statements=statements, deadline=None)
    inline = functools.partial(engine.run_inline, context=CONTEXT, statements=statements, deadline=None)
    if threads is None:
        return await databases.run(CONTEXT.database_id, run, SCHEMA, inline=inline)
    return await databases.run(CONTEXT.database_id, _noting_thread(run, threads), SCHEMA,
                               inline=_noting_thread(inline, threads, "loop"))


def _noting_thread(work, threads: list[str], where: str = "worker"):
    def noted(database):
        outcome = work(database)
        threads.append(where if threading.current_thread() is threading.main_thread() else "worker")
        return outcome
    return noted


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


async def _cancel_a_long_read(databases: Databases) -> None:
    """Cancel a call while its long read runs on a worker thread (as past the shutdown grace)."""
    running = asyncio.create_task(request(databases, SLOW_READ))
    await asyncio.sleep(0.05)
    running.cancel()


def test_close_waits_for_work_a_cancelled_call_left_running(tmp_path: Path) -> None:
    """Past the shutdown grace, calls are cancelled while their SQLite work still runs on a worker thread."""
    async def scenario() -> None:
        databases = Databases(Storage(tmp_path))
        await request(databases, "INSERT INTO t VALUES (1)")
        await _cancel_a_long_read(databases)
        await databases.close()  # must not close the connection under the running statement
        assert databases.stats()["open"] == 0

    asyncio.run(scenario())
    reopened = Storage(tmp_path).open(CONTEXT.database_id)
    assert reopened.conn.execute("SELECT count(*) FROM t").fetchone() == (1,)
    reopened.close()


def test_short_reads_on_an_open_database_run_inline_and_the_rest_on_workers(tmp_path: Path) -> None:
    async def scenario() -> None:
        databases = Databases(Storage(tmp_path))
        threads: list[str] = []
        await request(databases, "SELECT count(*) FROM t", threads=threads)  # first touch: opens, on a worker
        await request(databases, "INSERT INTO t VALUES (1)", threads=threads)
        outcome = await request(databases, "SELECT count(*) FROM t", threads=threads)
        assert outcome.results[0].rows[0].values[0].integer == 1, "the insert applied exactly once"
        outcome = await request(databases, SLOW_READ, threads=threads)
        assert outcome.results[0].rows[0].values[0].integer == 3000000
        assert threads == ["worker", "worker", "loop", "worker"]
        await databases.close()

    asyncio.run(scenario())


def test_requests_on_one_database_apply_in_arrival_order_inline_or_not(tmp_path: Path) -> None:
    async def scenario() -> None:
        databases = Databases(Storage(tmp_path))
        await request(databases, "SELECT 1")
        calls = [request(databases, f"INSERT INTO t VALUES ({i})") if i % 2
                 else request(databases, "SELECT count(*) FROM t") for i in range(40)]
        outcomes = await asyncio.gather(*calls)
        seen = [outcome.results[0].rows[0].values[0].integer for outcome in outcomes[::2]]
        assert seen == list(range(20)), "each read sees exactly the writes that arrived before it"
        await databases.close()

    asyncio.run(scenario())


def test_a_cancelled_calls_work_keeps_its_database_until_it_ends(tmp_path: Path) -> None:
    """A call cancelled while its work runs on a worker thread keeps the database: the next request runs
    once that work has ended (queued behind it, on the worker that ran it), never beside it."""
    async def scenario() -> None:
        databases = Databases(Storage(tmp_path))
        await request(databases, "INSERT INTO t VALUES (1)")
        steps: list[str] = []
        running = asyncio.create_task(request(databases, SLOW_READ, threads=steps))
        await asyncio.sleep(0.05)
        running.cancel()
        outcome = await databases.run(CONTEXT.database_id, _noting_start(_read_count, steps), SCHEMA)
        assert outcome == 1
        assert steps == ["worker", "next started"], "the next request ran before the cancelled call's work ended"
        await databases.close()

    asyncio.run(scenario())


def _read_count(database) -> int:
    return database.conn.execute("SELECT count(*) FROM t").fetchone()[0]


def _noting_start(work, steps: list[str]):
    def noted(database):
        steps.append("next started")
        return work(database)
    return noted


@pytest.fixture
def warm(tmp_path: Path):
    """An open database with two rows, as a request left it."""
    database = Storage(tmp_path).open(CONTEXT.database_id, SCHEMA)
    engine.run(database, CONTEXT, [pb.Statement(sql="INSERT INTO t VALUES (1), (2)")], None)
    yield database
    database.close()


def _inline(database, *sql: str, **claims) -> engine.Outcome:
    context = shard_pb2.Context()
    context.CopyFrom(CONTEXT)
    for claim, value in claims.items():
        setattr(context, claim, value)
    return engine.run_inline(database, context, [pb.Statement(sql=text) for text in sql], None)


def _rows(database) -> list[tuple]:
    return database.conn.execute("SELECT x FROM t ORDER BY x").fetchall()


@pytest.mark.parametrize("sql, claims", [
    (["INSERT INTO t VALUES (3)"], {}),
    (["SELECT 1", "DELETE FROM t"], {}),  # a batch whose second statement writes
    (["SELECT 1"], {"before": "INSERT INTO t VALUES (3)"}),
    (["SELECT 1"], {"after": "INSERT INTO t VALUES (3)"}),
    (["SELECT 1"], {"instead": "DELETE FROM t"}),
    (["SELECT 1"], {"destroy": True}),
    (["SELECT 1"], {"schema": open_table("CREATE TABLE t (x INTEGER); CREATE TABLE u (y)", "t")}),
    ([SLOW_READ], {}),
    (["SELECT 1" + " " * engine.INLINE_SQL_CHARS], {}),  # long to parse
    ([f"SELECT length(zeroblob({engine.INLINE_VALUE_BYTES + 1}))"], {}),  # one long VM step
])
def test_inline_gives_up_having_changed_nothing(warm, sql: list[str], claims: dict) -> None:
    with pytest.raises(RunOnWorker):
        _inline(warm, *sql, **claims)
    assert _rows(warm) == [(1,), (2,)]
    assert not warm.destroyed
    assert warm.conn.execute("SELECT count(*) FROM sqlite_schema WHERE name = 'u'").fetchone() == (0,)
    assert warm.conn.get_autocommit(), "the attempt's transaction was rolled back"
    assert engine.run(warm, CONTEXT, [pb.Statement(sql="INSERT INTO t VALUES (3)")], None).results[0].rows_written == 1


def test_inline_reads_see_the_last_commit_without_waiting_for_another_connections_write(warm) -> None:
    other = apsw.Connection(str(warm.path))
    other.execute("BEGIN IMMEDIATE; INSERT INTO t VALUES (3)")  # a write lock held, and a row not committed
    try:
        started = time.monotonic()
        assert _inline(warm, "SELECT count(*) FROM t").results[0].rows[0].values[0].integer == 2
        assert time.monotonic() - started < BUSY_MS / 1000 / 2, "it waited for the lock"
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_inline_reads_answer_as_a_worker_would_filters_included(warm) -> None:
    point = ["SELECT x, x * 1.5, 'n' || x FROM t WHERE x = 2"]
    assert _inline(warm, *point) == engine.run(warm, CONTEXT, [pb.Statement(sql=sql) for sql in point], None)
    other = apsw.Connection(str(warm.path))
    other.execute("UPDATE _filters SET predicate = 'x > 1'")  # the policy changes under the enforcer
    other.close()
    assert _inline(warm, "SELECT x FROM t").results[0].rows == [pb.Row(values=[to_value(2)])]
    with pytest.raises(Fault) as refused:
        _inline(warm, "SELECT * FROM no_such_table")
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_a_large_value_gives_up_inline_and_is_answered_by_a_worker(tmp_path: Path) -> None:
    async def scenario() -> None:
        databases = Databases(Storage(tmp_path))
        big = engine.INLINE_VALUE_BYTES * 2
        await request(databases, f"INSERT INTO t VALUES (length(randomblob({big})))")
        threads: list[str] = []
        outcome = await request(databases, f"SELECT length(zeroblob({big})), x FROM t", threads=threads)
        assert [value.integer for value in outcome.results[0].rows[0].values] == [big, big]
        assert threads == ["worker"]
        with pytest.raises(Fault) as refused:  # the real limit still answers, from the worker
            await request(databases, f"SELECT zeroblob({Limits().result_bytes + 1})")
        assert refused.value.reason == "TOO_BIG"
        await databases.close()

    asyncio.run(scenario())


def test_a_text_seen_to_write_skips_the_inline_attempt(warm, monkeypatch) -> None:
    """The second time, the request goes to a worker before any statement is prepared on the event loop."""
    text = "UPDATE t SET x = x WHERE x = 1 -- seen to write"
    with pytest.raises(RunOnWorker):
        _inline(warm, text)
    assert _inline(warm, "SELECT count(*) FROM t").results[0].rows[0].values[0].integer == 2  # reads: still inline
    tried: list[str] = []
    monkeypatch.setattr(engine, "run", lambda *args, **kwargs: tried.append("run"))
    with pytest.raises(RunOnWorker):
        _inline(warm, "SELECT 1", text)
    assert tried == []
