"""Works queued on one database are drained by the worker thread that runs the first
(loot/shard/databases.py): each starts once the one before it ended, without the
event loop in between, exactly once, in arrival order; a deadline passed, a caller
gone, a fence or a lease ahead in the queue are honoured; and a drain gives its
worker back after DRAIN works, so another account's database is not starved."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import grpc
import pytest

from loot.ids import database_id
from loot.status import Fault
from loot.shard.databases import DRAIN, Databases
from loot.shard.storage import Storage

DB, OTHER = database_id("a", "app", "drained"), database_id("b", "app", "other")
WAIT = 60  # seconds: only ever reached when the behaviour under test is broken


def _append(value: int, log: list | None = None):
    """A work writing `value` to the database (and to `log`, as it runs)."""
    def work(database) -> int:
        with database.conn:
            database.conn.execute("CREATE TABLE IF NOT EXISTS t (x)")
            database.conn.execute("INSERT INTO t VALUES (?)", (value,))
        if log is not None:
            log.append(value)
        return value
    return work


def _values(database) -> list:
    with database.conn:
        database.conn.execute("CREATE TABLE IF NOT EXISTS t (x)")
    return [x for (x,) in database.conn.execute("SELECT x FROM t ORDER BY rowid")]


class _Blocker:
    """A work that holds its database until `release()`: whatever arrives meanwhile queues behind it."""

    def __init__(self) -> None:
        self.started, self.gate = threading.Event(), threading.Event()

    def __call__(self, database) -> str:
        self.started.set()
        self.gate.wait(WAIT)
        return "blocker"

    async def running(self) -> None:
        assert await asyncio.to_thread(self.started.wait, WAIT)

    def release(self) -> None:
        self.gate.set()


async def _queued(databases: Databases, count: int) -> None:
    """Wait until `count` requests wait for their database."""
    while databases.stats()["queued"] < count:
        await asyncio.sleep(0.01)


async def _blocked(databases: Databases, database: str = DB, account: str = "") -> tuple[_Blocker, asyncio.Task]:
    blocker = _Blocker()
    running = asyncio.create_task(databases.run(database, blocker, account=account))
    await blocker.running()
    return blocker, running


def test_queued_writes_run_one_after_another_on_the_worker_exactly_once_in_arrival_order(tmp_path: Path) -> None:
    async def scenario() -> None:
        databases = Databases(Storage(tmp_path))
        blocker, running = await _blocked(databases)
        ended = threading.Event()

        def last(database) -> int:
            value = _append(DRAIN - 2)(database)
            ended.set()
            return value
        works = [_append(i) for i in range(DRAIN - 2)] + [last]
        calls = [asyncio.create_task(databases.run(DB, work)) for work in works]
        await _queued(databases, len(calls))
        blocker.release()
        # The event loop stays blocked here: each queued work starts on the worker once the one before ended.
        assert ended.wait(WAIT), "a queued work waited for the event loop to start"
        assert await running == "blocker"
        assert await asyncio.gather(*calls) == list(range(DRAIN - 1))
        assert await databases.run(DB, _values) == list(range(DRAIN - 1)), "each applied once, in arrival order"
        assert databases.stats()["queued"] == 0
        await databases.close()

    asyncio.run(scenario())


def test_a_queued_request_past_its_deadline_is_refused_with_nothing_applied(tmp_path: Path) -> None:
    async def scenario() -> None:
        databases = Databases(Storage(tmp_path))
        loop = asyncio.get_running_loop()
        blocker, running = await _blocked(databases)
        waited_out = asyncio.create_task(databases.run(DB, _append(1), deadline=loop.time() + 0.1))
        with pytest.raises(Fault) as refused:  # answered at its deadline, while still queued
            await waited_out
        assert refused.value.code == grpc.StatusCode.DEADLINE_EXCEEDED

        ended = threading.Event()

        def after(database) -> int:
            ended.set()
            return _append(3)(database)
        deadline = loop.time() + 0.5
        late = asyncio.create_task(databases.run(DB, _append(2), deadline=deadline))
        behind = asyncio.create_task(databases.run(DB, after))
        await asyncio.sleep(0)  # both queue
        assert databases.stats()["queued"] == 2
        # The event loop blocked past the deadline, its caller's timer unfired: the drain itself refuses it.
        _sleep_until(deadline)
        blocker.release()
        assert ended.wait(WAIT)
        with pytest.raises(Fault) as refused:
            await late
        assert refused.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
        assert "nothing of it ran" in refused.value.message
        assert await behind == 3
        assert await running == "blocker"
        assert await databases.run(DB, _values) == [3]
        await databases.close()

    asyncio.run(scenario())


def _sleep_until(deadline: float) -> None:
    while time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_cancelled_queued_request_never_runs(tmp_path: Path) -> None:
    async def scenario() -> None:
        databases = Databases(Storage(tmp_path))
        blocker, running = await _blocked(databases)
        gone = asyncio.create_task(databases.run(DB, _append(1)))
        kept = asyncio.create_task(databases.run(DB, _append(2)))
        await _queued(databases, 2)
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        assert databases.stats()["queued"] == 1, "the cancelled request left the queue"
        blocker.release()
        assert await kept == 2
        await running
        assert await databases.run(DB, _values) == [2]
        await databases.close()

    asyncio.run(scenario())


def test_a_flooded_database_gives_its_worker_to_another_account_after_a_drain(tmp_path: Path) -> None:
    """One worker thread: account a floods its database; account b's one request runs after at most
    DRAIN of a's works, not after all of them."""
    async def scenario() -> None:
        databases = Databases(Storage(tmp_path), threads=1)
        log: list = []
        blocker, running = await _blocked(databases, account="a")
        flood = [asyncio.create_task(databases.run(DB, _append(i, log), account="a")) for i in range(3 * DRAIN)]
        await _queued(databases, len(flood))
        other = asyncio.create_task(databases.run(OTHER, _append("b", log), account="b"))
        await asyncio.sleep(0)  # its request waits for the one worker
        assert not other.done()
        blocker.release()
        assert await other == "b"
        await asyncio.gather(running, *flood)
        assert log.index("b") <= DRAIN, "account b waited for more than one drain of account a"
        assert [x for x in log if x != "b"] == list(range(3 * DRAIN))
        await databases.close()

    asyncio.run(scenario())


def test_a_lease_waits_behind_queued_writes_and_nothing_runs_inside_it(tmp_path: Path) -> None:
    async def scenario() -> None:
        databases = Databases(Storage(tmp_path))
        blocker, running = await _blocked(databases)
        before = [asyncio.create_task(databases.run(DB, _append(i))) for i in range(3)]
        leasing = asyncio.create_task(databases.lease(DB, "a", None))
        await _queued(databases, 4)
        after = [asyncio.create_task(databases.run(DB, _append(i))) for i in range(3, 6)]
        await _queued(databases, 7)
        blocker.release()
        lease = await leasing
        assert await asyncio.gather(*before) == [0, 1, 2], "the writes queued ahead ran first"
        assert await lease.run(_values) == [0, 1, 2]
        await asyncio.sleep(0.05)  # room for anything that wrongly runs inside the lease
        assert await lease.run(_append("lease")) == "lease"
        assert await lease.run(_values) == [0, 1, 2, "lease"], "nothing ran between the lease's works"
        assert not any(call.done() for call in after)
        await lease.end(None)
        assert await asyncio.gather(*after) == [3, 4, 5]
        await running
        await databases.close()

    asyncio.run(scenario())


def test_a_fence_during_a_drain_refuses_the_queued_works_and_closes_the_database(tmp_path: Path) -> None:
    async def scenario() -> None:
        databases, owned = Databases(Storage(tmp_path)), {DB}

        def refuse_unless_owned(database_id: str) -> None:
            if database_id not in owned:
                raise Fault(grpc.StatusCode.FAILED_PRECONDITION, "WRONG_SHARD", "moved")
        databases.still_owned = refuse_unless_owned
        await databases.run(DB, _append(0))
        blocker, running = await _blocked(databases)
        ahead = [asyncio.create_task(databases.run(DB, _append(i))) for i in range(1, 4)]
        await _queued(databases, 3)
        owned.clear()  # the new membership gives DB away
        fencing = asyncio.create_task(databases.fence(lambda database_id: database_id not in owned))
        await asyncio.sleep(0)  # the fence queues
        behind = asyncio.create_task(databases.run(DB, _append(4)))
        await _queued(databases, 4)
        assert not fencing.done(), "the fence waits for the request in progress"
        blocker.release()
        assert await running == "blocker", "the request in progress ran to its end"
        assert await fencing == 1
        assert databases.stats()["open"] == 0
        for call in [*ahead, behind]:
            with pytest.raises(Fault) as refused:
                await call
            assert refused.value.reason == "WRONG_SHARD"
        await databases.close()
        reopened = Storage(tmp_path).open(DB)
        assert _values(reopened) == [0], "no queued work ran once the database moved"
        reopened.close()

    asyncio.run(scenario())
