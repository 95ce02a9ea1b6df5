"""Storage and the open-database cache, in process: crash-safe creation,
durable destroy, the LRU bound and queue bounds."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import apsw
import grpc
import pytest

from loot.ids import database_id
from loot.status import Fault
from loot.shard import schema
from loot.shard.databases import Databases
from loot.shard.limits import Limits
from loot.shard.storage import Storage, checkpoint_before_close

SCHEMA = "CREATE TABLE t (x)"


def _id(tenant: str) -> str:
    return database_id("account", "app", tenant)


def _user_rows(storage: Storage, tenant: str) -> list[tuple]:
    database = storage.open(_id(tenant), SCHEMA)
    try:
        return database.conn.execute("SELECT x FROM t").fetchall()
    finally:
        database.close()


def test_new_database_comes_from_the_schema_template(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    database = storage.open(_id("a"), SCHEMA)
    assert database.take_creation_changes() == ["created table t"]
    tables = {name for (name,) in database.conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
    assert tables - {"_loot_schema_history"} == {"_filters", "_rules", "t"}
    assert database.conn.pragma("journal_mode") == "wal" and database.conn.pragma("foreign_keys") == 1
    database.close()
    assert storage.open(_id("a"), SCHEMA).creation_changes == [], "an existing database is not created again"


def test_a_fresh_copy_knows_its_claim_is_current_and_a_failing_claim_is_not(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    database = storage.open(_id("a"), SCHEMA)
    assert schema.unchanged(database.conn, SCHEMA), "the first request checks the claim with one PRAGMA"
    database.conn.execute("CREATE TABLE IF NOT EXISTS bump (x); DROP TABLE bump")  # privileged DDL since
    assert not schema.unchanged(database.conn, SCHEMA)
    failing = "CREATE TABLE t (x); CREATE INDEX i ON missing (x)"
    broken = storage.open(_id("b"), failing)
    assert broken.creation_changes == [] and not schema.unchanged(broken.conn, failing)
    with pytest.raises(Fault):
        schema.apply(broken.conn, failing)


def test_leftovers_of_an_interrupted_creation_are_cleared_and_never_look_like_a_database(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    staged = storage.scratch / f"{_id('a')}.sqlite.deadbeef"
    staged.write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)  # killed between write and rename
    Storage(tmp_path)
    assert not staged.exists()
    assert not storage.path(_id("a")).exists()


CREATOR = """
import sys
from pathlib import Path
from loot.ids import database_id
from loot.shard.storage import SPARE_COPIES, Storage
storage = Storage(Path(sys.argv[1]), spare_copies=SPARE_COPIES)
print("ready", flush=True)
for i in range(100000):
    storage.open(database_id("account", "app", f"t{i}"), "CREATE TABLE t (x); CREATE TABLE u (y)").close()
"""


@pytest.mark.cluster  # kills a creating process
def test_kill_9_mid_creation_leaves_only_whole_databases(tmp_path: Path) -> None:
    for round in range(3):
        process = subprocess.Popen([sys.executable, "-c", CREATOR, str(tmp_path)], stdout=subprocess.PIPE, text=True)
        assert process.stdout.readline().strip() == "ready"
        time.sleep(0.3 + 0.1 * round)
        process.send_signal(signal.SIGKILL)
        process.wait()
    files = list(tmp_path.rglob("*.sqlite"))
    assert len(files) > 10
    for path in files:
        conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
        assert tables - {"_loot_schema_history"} == {"_filters", "_rules", "t", "u"}, f"{path} is half-made"
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        conn.close()


def test_destroy_deletes_every_file_and_a_stale_wal_never_replays(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    database = storage.open(_id("a"), SCHEMA)
    database.conn.execute("INSERT INTO t VALUES ('old')")
    path = database.path
    stale_wal = tmp_path / "old-wal"
    shutil.copy(f"{path}-wal", stale_wal)
    database.destroy()
    assert not any(path.parent.iterdir()), "destroy left files behind"
    shutil.copy(stale_wal, f"{path}-wal")  # as if a crash had interrupted the deletion after the rename
    assert _user_rows(storage, "a") == []


def test_destroy_writes_nothing_back_into_the_file_it_deletes(tmp_path: Path) -> None:
    """A last close checkpoints with the GIL held (apsw); destroy has nothing to checkpoint for."""
    database = Storage(tmp_path).open(_id("a"), SCHEMA)
    database.conn.execute("INSERT INTO t VALUES ('only in the WAL')")
    same_file = tmp_path / "same-inode"
    os.link(database.path, same_file)  # outlives the deletion, so what close wrote into it shows
    before = same_file.read_bytes()
    database.destroy()
    assert not database.path.exists() and not Path(f"{database.path}-wal").exists()
    assert same_file.read_bytes() == before, "destroy checkpointed into the file it deletes"


def test_closing_checkpoints_first_so_close_itself_has_no_disk_work_left(tmp_path: Path) -> None:
    """apsw holds the GIL through sqlite3_close: the checkpoint must be done before, with it released."""
    database = Storage(tmp_path).open(_id("a"), SCHEMA)
    database.conn.execute("INSERT INTO t VALUES ('kept')")
    checkpoint_before_close(database.conn)
    assert Path(f"{database.path}-wal").stat().st_size == 0, "the WAL is emptied, so close frees nothing"
    alone = tmp_path / "file-alone.sqlite"
    shutil.copy(database.path, alone)  # the database file without its WAL, the connection still open
    assert apsw.Connection(str(alone)).execute("SELECT x FROM t").fetchall() == [("kept",)]
    database.close()
    assert sorted(path.name for path in database.path.parent.iterdir()) == [database.path.name]


def test_closing_while_another_process_reads_neither_waits_nor_loses_a_write(tmp_path: Path) -> None:
    database = Storage(tmp_path).open(_id("a"), SCHEMA)
    database.conn.execute("INSERT INTO t VALUES ('before the reader')")
    reader = apsw.Connection(str(database.path), flags=apsw.SQLITE_OPEN_READONLY)
    reader.execute("BEGIN; SELECT count(*) FROM t").fetchall()  # holds its snapshot, as `loot backup` does
    database.conn.execute("INSERT INTO t VALUES ('after it')")
    checkpoint_before_close(database.conn)  # busy: stops where it must, without the 5 s busy wait
    database.close()
    reader.execute("COMMIT")
    reader.close()
    assert _user_rows(Storage(tmp_path), "a") == [("before the reader",), ("after it",)]


def _run(coroutine):
    return asyncio.run(coroutine)


def test_open_databases_stay_within_the_cache_bound(tmp_path: Path) -> None:
    limits = Limits(open_databases=3)
    databases = Databases(Storage(tmp_path, limits), limits, threads=2)

    async def touch_all() -> None:
        for round in range(2):
            for i in range(10):
                await databases.run(_id(f"t{i}"), lambda database: database.conn.execute("SELECT 1").fetchall())
                assert databases.stats()["open"] <= 3
        await databases.run(_id("t9"), lambda database: None)
        await databases.close()

    _run(touch_all())
    stats = databases.stats()
    assert stats["misses"] == 20 and stats["hits"] == 1 and stats["queued"] == 0


def test_a_full_queue_is_resource_exhausted(tmp_path: Path) -> None:
    limits = Limits(queued_per_database=2)
    databases = Databases(Storage(tmp_path, limits), limits, threads=2)

    async def flood() -> list:
        calls = [databases.run(_id("busy"), lambda database: time.sleep(0.2)) for _ in range(4)]
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        await databases.close()
        return outcomes

    outcomes = _run(flood())
    refusals = [o for o in outcomes if isinstance(o, Fault)]
    assert len(refusals) == 2 and all(f.code == grpc.StatusCode.RESOURCE_EXHAUSTED for f in refusals)
    assert outcomes.count(None) == 2
