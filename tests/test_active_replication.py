"""Replication of the recently used databases (--replica-active, docs/backups.md): against a real shard and
its real Litestream, to a directory and to a local S3."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.backup_targets import replica_env, replicated
from tests.client import Client
from tests.conftest import start_cluster
from tests.test_backups import SCHEMA, _replicator_pid, has, write
from loot.cli.local_cluster import LocalCluster
from loot.ids import database_id
from loot.shard.replica_restore import restore
from loot.shard.active_set import ActiveSet
from loot.shard.replica_target import parse_target
from loot.shard.replicator import Replicator, litestream_binary
from loot.tokens import Key, mint

pytestmark = pytest.mark.cluster

WINDOW_MINUTES = "0.1"  # 6 s: idle databases leave within seconds


def in_set(cluster: LocalCluster, database: str) -> bool:
    """Whether the shard's Litestream replicates `database` now (asked on its control socket)."""
    data = cluster.data / "shard-0"
    socket = json.loads((data / ".litestream" / "litestream.yml").read_text())["socket"]["path"]
    listed = subprocess.run([litestream_binary(), "list", "-json", "-socket", socket],
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    paths = {Path(entry["path"]).name for entry in json.loads(listed.stdout).get("databases") or []}
    return f"{database}.sqlite" in paths


def wait_for(condition, what: str, patience: float = 120.0) -> None:
    deadline = time.monotonic() + patience
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


@pytest.mark.parametrize("kind", ["dir", "s3"])
def test_an_idle_database_leaves_the_set_with_its_last_write_shipped_and_a_write_brings_it_back(
        tmp_path: Path, key: Key, kind: str) -> None:
    with replica_env(kind, tmp_path / "replica") as (env, target):
        cluster = start_cluster(tmp_path / "cluster", shards=1, env={**env, "LOOT_REPLICA_ACTIVE": WINDOW_MINUTES})
        try:
            alice, bob = database_id(key.account, "app", "alice"), database_id(key.account, "app", "bob")
            with Client(cluster.address) as client:
                write(client, key, "bob", range(1))
                write(client, key, "alice", range(3))
                wait_for(lambda: in_set(cluster, alice), "a written database never joined the set")
                wait_for(lambda: not in_set(cluster, alice), "an idle database never left the set")
                assert_replica_holds(target, alice, set(range(3)))  # no waiting: shipped before it left

                write(client, key, "alice", [3])
                replicated(target, alice, has(set(range(4))))  # the write after the idle spell
                wait_for(lambda: not in_set(cluster, alice), "the database never left the set again")
                assert_replica_holds(target, alice, set(range(4)))
            assert_replica_holds(target, bob, set(range(1)))
        finally:
            cluster.stop()


def test_a_returning_database_resumes_without_a_new_snapshot(tmp_path: Path, key: Key) -> None:
    """Leaving and joining keep Litestream's position: the write after an idle spell ships as a small
    change, not as a copy of the whole database."""
    with replica_env("dir", tmp_path / "replica") as (env, target):
        cluster = start_cluster(tmp_path / "cluster", shards=1, env={**env, "LOOT_REPLICA_ACTIVE": WINDOW_MINUTES})
        try:
            alice = database_id(key.account, "app", "alice")
            token = mint(key, "app", "alice", schema=SCHEMA)
            with Client(cluster.address) as client:
                client.execute(token, "WITH RECURSIVE c(n) AS (SELECT 100 UNION ALL SELECT n + 1 FROM c WHERE n < 30000)"
                                      " INSERT INTO t SELECT n FROM c")
                replicated(target, alice, has(set(range(100, 30001))))
                wait_for(lambda: not in_set(cluster, alice), "an idle database never left the set")
                changes = replica_changes(target.url, alice)
                write(client, key, "alice", [1])
                wait_for(lambda: len(replica_changes(target.url, alice)) > len(changes), "the write never shipped")
            added = [size for name, size in replica_changes(target.url, alice).items() if name not in changes]
            assert max(added) < max(changes.values()) / 10, (added, changes)  # the 30,000 rows' change
        finally:
            cluster.stop()


def replica_changes(replica: str, database: str) -> dict[str, int]:
    """The replica's level-0 change files of `database` (name: bytes): each sync adds one."""
    level0 = Path(replica) / database[:2] / database[2:4] / f"{database}.sqlite" / "ltx" / "0"
    return {path.name: path.stat().st_size for path in level0.glob("*.ltx")}


def assert_replica_holds(target, database: str, expected: set[int]) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "db.sqlite"
        restore(target, database, out)
        assert has(expected)(out)


def test_the_shard_ships_at_start_what_its_replica_may_lack(tmp_path: Path, key: Key) -> None:
    """Databases made before replication was turned on, and a write Litestream never shipped before the
    shard was killed (Litestream stopped first), reach the replica once the shard starts again, though
    no request touches them."""
    with replica_env("dir", tmp_path / "replica") as (env, target):
        cluster = start_cluster(tmp_path / "cluster", shards=1)
        try:
            shard = cluster.shards["shard-0"]
            with Client(cluster.address) as client:
                write(client, key, "old", range(3))
            shard.signal(signal.SIGTERM)
            shard.wait(30)
            cluster.env.update({**env, "LOOT_REPLICA_ACTIVE": "1"})
            cluster.restart_shard("shard-0")
            replicated(target, database_id(key.account, "app", "old"), has(set(range(3))))

            alice = database_id(key.account, "app", "alice")
            with Client(cluster.address) as client:
                write(client, key, "alice", range(3))
                replicated(target, alice, has(set(range(3))))
                litestream = _replicator_pid(shard.process.pid)
                os.kill(litestream, signal.SIGSTOP)  # ships nothing from here on
                write(client, key, "alice", [3])
            shard.signal(signal.SIGKILL)
            shard.wait(10)
            with contextlib.suppress(ProcessLookupError):  # its parent-death signal (SIGKILL) may have ended it
                os.kill(litestream, signal.SIGKILL)
            assert_replica_holds(target, alice, set(range(3)))  # the last write is not in the replica
            cluster.restart_shard("shard-0")
            replicated(target, alice, has(set(range(4))))
        finally:
            cluster.stop()


def test_past_its_limit_the_set_lets_the_least_recently_used_leave_first(tmp_path: Path) -> None:
    """The set never holds more databases than Litestream's open files allow: one joining past the limit
    makes the least recently used idle one leave, with its last write shipped."""
    data, target = tmp_path / "data", parse_target(str(tmp_path / "replica"))
    ids = [f"{n:x}" * 64 for n in range(3)]
    path_of = lambda database: data / f"{database}.sqlite"  # noqa: E731
    data.mkdir()
    for database in ids:
        with sqlite3.connect(path_of(database)) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("CREATE TABLE t (n INTEGER PRIMARY KEY)")

    async def scenario() -> set[str]:
        replicator = Replicator(data, "s", target, 24, controlled=True)
        active = ActiveSet(replicator.socket, path_of, target.database_url, 3600, data / "joined", limit=2)
        listening = asyncio.Event()
        replicator.on_start = lambda: (active.litestream_started(), listening.set())
        active.start([])
        replicator.start()
        try:
            await listening.wait()
            for n, database in enumerate(ids):
                active.hold(database)
                await active.join(database)
                with sqlite3.connect(path_of(database)) as conn:
                    conn.execute("INSERT INTO t VALUES (?)", [n])
                active.release(database)
            return {database for database in ids if database in active}
        finally:
            await active.stop()
            await replicator.stop()

    assert asyncio.run(scenario()) == set(ids[1:])
    assert_replica_holds(target, ids[0], {0})
