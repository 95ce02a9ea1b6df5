"""The handoff's local steps, in process: the old owner's fence, retiring a file, and a new
owner never replacing a copy already in place (docs/rebalancing.md §5)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import grpc
import pytest

from loot.ids import database_id
from loot.membership import Membership, MembershipSource, write_membership
from loot.status import Fault
from loot.shard.databases import Databases
from loot.shard.handoff import files
from loot.shard.handoff.peers import Peers
from loot.shard.handoff.progress import Progress
from loot.shard.handoff.puller import BadCopy, Puller
from loot.shard.storage import Storage

DB = database_id("account", "app", "moving")


def _write(value: int):
    def work(database):
        with database.conn:
            database.conn.execute("CREATE TABLE IF NOT EXISTS t (x)")
            database.conn.execute("INSERT INTO t VALUES (?)", (value,))
        return value
    return work


def test_the_fence_lets_the_running_request_finish_refuses_the_queued_ones_and_closes(tmp_path: Path) -> None:
    async def scenario() -> None:
        databases, owned = Databases(Storage(tmp_path)), {DB}
        release = threading.Event()

        def refuse_unless_owned(database_id: str) -> None:
            if database_id not in owned:
                raise Fault(grpc.StatusCode.FAILED_PRECONDITION, "WRONG_SHARD", "moved")
        databases.still_owned = refuse_unless_owned

        def slow(database):
            release.wait(10)
            return _write(1)(database)

        running = asyncio.create_task(databases.run(DB, slow))
        await asyncio.sleep(0.05)
        queued = asyncio.create_task(databases.run(DB, _write(2)))
        await asyncio.sleep(0.05)
        owned.clear()  # the new membership gives DB away
        fencing = asyncio.create_task(databases.fence(lambda database_id: database_id not in owned))
        await asyncio.sleep(0.05)
        assert not fencing.done(), "the fence waits for the request in progress"
        release.set()
        assert await running == 1
        assert await fencing == 1
        with pytest.raises(Fault) as refused:
            await queued
        assert refused.value.reason == "WRONG_SHARD"
        assert databases.stats()["open"] == 0
        await databases.close()

    asyncio.run(scenario())
    rows = Storage(tmp_path).connect(Storage(tmp_path).path(DB))[0].execute("SELECT x FROM t").fetchall()
    assert rows == [(1,)], "only the request that held the database wrote"


def test_a_retired_database_leaves_the_served_layout_and_a_second_confirm_is_a_no_op(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    storage.open(DB).close()
    assert files.held(storage, lambda database_id: True) == [DB]
    assert files.retire(storage, DB, epoch=3)
    assert not storage.path(DB).exists() and files.held(storage, lambda database_id: True) == []
    assert (tmp_path / files.RETIRED / f"{DB}.epoch-3.sqlite").exists()
    assert not files.retire(storage, DB, epoch=3)


def test_a_pulled_copy_is_checked_and_never_replaces_one_in_place(tmp_path: Path) -> None:
    async def scenario() -> None:
        source, target = Storage(tmp_path / "a"), Storage(tmp_path / "b")
        database = source.open(DB)
        _write(7)(database)
        database.close()
        puller = Puller("b", MembershipSource(Membership(0, {"a": "", "b": ""})), target, Peers("x" * 16), Progress())
        first = files.copy(source, DB)
        puller.install(DB, first)
        assert not first.exists()
        installed = target.path(DB)
        served = target.open(DB)
        _write(8)(served)  # written at the new owner after the copy arrived
        served.close()
        second = files.copy(source, DB)
        puller.install(DB, second)  # a late duplicate of the same pull
        values = target.connect(installed)[0].execute("SELECT x FROM t ORDER BY x").fetchall()
        assert values == [(7,), (8,)]
        damaged = target.staging_path("damaged")
        damaged.write_bytes(b"SQLite format 3\x00" + b"\x00" * 4000)
        with pytest.raises(BadCopy):
            puller.install(database_id("account", "app", "other"), damaged)
        assert not target.path(database_id("account", "app", "other")).exists()

    asyncio.run(scenario())


def test_a_shard_down_while_a_shard_was_removed_still_asks_the_removed_one(tmp_path: Path) -> None:
    """It never saw the change, so only what it remembers of the last epoch names the previous owner."""
    async def scenario() -> None:
        path, storage = tmp_path / "membership.json", Storage(tmp_path / "a")
        write_membership(path, Membership(0, {"a": "h:1", "b": "h:2", "c": "h:3"}))
        Puller("a", MembershipSource.from_file(path), storage, Peers("x" * 16), Progress())  # ran at epoch 0
        write_membership(path, Membership(1, {"a": "h:1", "b": "h:2"}))  # published while it was down
        restarted = Puller("a", MembershipSource.from_file(path), storage, Peers("x" * 16), Progress())
        assert restarted.rebalance.sources == ["b", "c"] and not restarted.rebalance.done.is_set()

    asyncio.run(scenario())
