"""Continuous replication, restore (in place, to a time, as a branch), export and import, against real
shards replicating with Litestream to a directory and to a local S3 (docs/backups.md)."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import apsw
import pytest

from tests.backup_targets import replica_env, replicated
from tests.client import Client, rows
from tests.conftest import start_cluster
from tests.schemas import open_table
from loot.cli.local_cluster import LocalCluster
from loot.ids import database_id
from loot.membership import format_members
from loot.ring import Ring
from loot.shard import system_tables
from loot.tokens import Key, mint

pytestmark = pytest.mark.cluster

SCHEMA = open_table("CREATE TABLE t (n INTEGER PRIMARY KEY)", "t")


def loot(cluster: LocalCluster, *argv: str, key: Key | None = None, check: bool = True,
         data: bool = False) -> subprocess.CompletedProcess:
    """A `loot` operator command against `cluster`'s shards, with its secret: named with --shards, or
    (`data`) found in the data directory as for a `loot up`."""
    shards = format_members({name: shard.address for name, shard in cluster.shards.items()})
    account = ["--account", key.account] if key is not None else []
    where = ["--data", str(cluster.data)] if data else ["--shards", shards]
    done = subprocess.run([sys.executable, "-m", "loot", *argv, *account, *where],
                          env=cluster.env, capture_output=True, text=True, timeout=300)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def write(client: Client, key: Key, tenant: str, numbers) -> None:
    for n in numbers:
        client.execute(mint(key, "app", tenant, schema=SCHEMA), "INSERT INTO t VALUES (?)", [n])


def numbers(client: Client, key: Key, tenant: str) -> set[int]:
    return {n for (n,) in rows(client.execute(mint(key, "app", tenant, schema=SCHEMA), "SELECT n FROM t").result)}


def has(expected: set[int]):
    """A replica check: the restored file holds exactly `expected` in t, and is whole."""
    def check(path: Path) -> bool:
        conn = apsw.Connection(str(path))
        try:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            return {n for (n,) in conn.execute("SELECT n FROM t")} == expected
        finally:
            conn.close()
    return check


@pytest.mark.parametrize("kind", ["dir", "s3"])
def test_a_lost_shard_comes_back_from_its_replica(tmp_path: Path, key: Key, kind: str) -> None:
    """Writes, kill -9 of the shard, its data directory deleted: restore-shard brings back every database
    it held, with every write the replica had taken in before the crash (waited for: no timing bound)
    and nothing that was never written, each file whole; the catalog lists them again."""
    with replica_env(kind, tmp_path / "replica") as (env, target):
        cluster = start_cluster(tmp_path / "cluster", shards=1, env=env)
        try:
            tenants = [f"t{i}" for i in range(3)]
            with Client(cluster.address) as client:
                for tenant in tenants:
                    write(client, key, tenant, range(50))
                for tenant in tenants:  # acknowledged, then replicated: these must all come back
                    replicated(target, database_id(key.account, "app", tenant), has(set(range(50))))
                for tenant in tenants:  # acknowledged just before the crash: may or may not have left
                    write(client, key, tenant, range(50, 60))
            shard = cluster.shards["shard-0"]
            shard.signal(signal.SIGKILL)
            shard.wait(10)
            shutil.rmtree(cluster.data / "shard-0")
            endpoint = ["--replica-endpoint", env["LOOT_REPLICA_ENDPOINT"]] if kind == "s3" else []
            done = subprocess.run([sys.executable, "-m", "loot", "restore-shard", "--name", "shard-0", "--data",
                                   str(cluster.data / "shard-0"), "--replica", env["LOOT_REPLICA"], *endpoint],
                                  env={**cluster.env, **env}, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stderr
            assert "restored 3 of the 3 databases" in done.stdout, done.stdout + done.stderr
            cluster.restart_shard("shard-0")
            with Client(cluster.address) as client:
                for tenant in tenants:
                    back = numbers(client, key, tenant)
                    assert set(range(50)) <= back <= set(range(60)), tenant
                    assert back == set(range(min(set(range(50, 61)) - back))), "a restored state is a prefix"
            cluster.stop()
            with sqlite3.connect(cluster.data / "shard-0" / "catalog.db") as conn:
                listed = {row for row in conn.execute("SELECT database_id, tenant FROM databases")}
            assert listed == {(database_id(key.account, "app", tenant), tenant) for tenant in tenants}
            for path in (cluster.data / "shard-0").rglob("*.sqlite"):
                conn = apsw.Connection(str(path))
                assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
                conn.close()
        finally:
            cluster.stop()


def test_restore_to_a_time_and_branches(tmp_path: Path, key: Key) -> None:
    with replica_env("dir", tmp_path / "replica") as (env, target):
        cluster = start_cluster(tmp_path / "cluster", shards=2, env=env)
        try:
            original = database_id(key.account, "app", "alice")
            with Client(cluster.address) as client:
                write(client, key, "alice", range(10))
                replicated(target, original, has(set(range(10))))
                moment = datetime.now(timezone.utc)
                time.sleep(0.01)
                write(client, key, "alice", range(10, 20))
                replicated(target, original, has(set(range(20))))

                at = moment.isoformat().replace("+00:00", "Z")
                loot(cluster, "restore", "--db", "app", "--tenant", "alice", "--at", at, "--to-tenant", "then", key=key)
                assert numbers(client, key, "then") == set(range(10)), "the branch is the state at that time"
                write(client, key, "then", [100])
                write(client, key, "alice", [200])
                assert numbers(client, key, "then") == {*range(10), 100}
                assert numbers(client, key, "alice") == {*range(20), 200}, "the branch leaves the original alone"

                refusal = loot(cluster, "restore", "--db", "app", "--tenant", "alice", "--at", at,
                               "--to-tenant", "then", key=key, check=False)
                assert refusal.returncode == 1 and "DATABASE_EXISTS" in refusal.stderr

                loot(cluster, "restore", "--db", "app", "--tenant", "alice", "--at", at, key=key)
                assert numbers(client, key, "alice") == set(range(10)), "in place, back to that time"
                write(client, key, "alice", [300])
                replicated(target, original, has({*range(10), 300}))  # its history goes on from there
                assert numbers(client, key, "then") == {*range(10), 100}

                garbled = loot(cluster, "restore", "--db", "app", "--tenant", "alice", "--at", "yesterday", key=key,
                               check=False)
                assert garbled.returncode == 1 and "BAD_TIMESTAMP" in garbled.stderr

                before = "2000-01-01T00:00:00Z"
                refusal = loot(cluster, "restore", "--db", "app", "--tenant", "alice", "--at", before, key=key,
                               check=False)
                assert refusal.returncode == 1 and "NO_REPLICA" in refusal.stderr
                assert numbers(client, key, "alice") == {*range(10), 300}, "a failed restore changes nothing"
        finally:
            cluster.stop()


def test_export_opens_in_sqlite3_and_import_checks_the_schema(tmp_path: Path, key: Key) -> None:
    cluster = start_cluster(tmp_path / "cluster", shards=2)
    try:
        with Client(cluster.address) as client:
            write(client, key, "alice", range(5))
        plain, whole = tmp_path / "plain.sqlite", tmp_path / "whole.sqlite"
        loot(cluster, "export", "--db", "app", "--tenant", "alice", "--out", str(plain), key=key)
        loot(cluster, "export", "--db", "app", "--tenant", "alice", "--out", str(whole), "--internal-tables", key=key)

        shell = subprocess.run([_sqlite3(), str(plain)], input="SELECT count(*) FROM t;\nPRAGMA integrity_check;\n.tables\n",
                               capture_output=True, text=True, timeout=60)
        assert shell.returncode == 0, shell.stderr
        assert shell.stdout.split() == ["5", "ok", "t"], "without Loot's tables by default"
        with sqlite3.connect(whole) as conn:  # and Python's own sqlite3
            tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
        assert {"t", "_filters", "_rules", "_loot_schema_history"} <= tables

        assert "note:" not in loot(cluster, "import", str(whole), "--db", "app", "--tenant", "copy", key=key).stdout
        bare = loot(cluster, "import", str(plain), "--db", "app", "--tenant", "bare", key=key)
        assert "read as empty until a schema claim opens them" in bare.stdout
        with Client(cluster.address) as client:
            assert numbers(client, key, "copy") == set(range(5))
            write(client, key, "copy", [9])
            assert numbers(client, key, "alice") == set(range(5))
        exists = loot(cluster, "import", str(whole), "--db", "app", "--tenant", "copy", key=key, check=False)
        assert exists.returncode == 1 and "DATABASE_EXISTS" in exists.stderr

        unreplicated = loot(cluster, "restore", "--db", "app", "--tenant", "alice", key=key, check=False)
        assert unreplicated.returncode == 1 and "start it with --replica" in unreplicated.stderr

        refused_file = tmp_path / "refused.sqlite"
        with sqlite3.connect(refused_file) as conn:  # a filter naming a column its table lacks
            conn.executescript(system_tables.DDL + "CREATE TABLE u (a INTEGER);"
                               "INSERT INTO _filters VALUES ('u', 'mine', 'owner = claim(''sub'')');")
        refusal = loot(cluster, "import", str(refused_file), "--db", "app", "--tenant", "bad", key=key, check=False)
        assert refusal.returncode == 1 and "SCHEMA_POLICY_INVALID" in refusal.stderr, refusal.stderr
        assert not any(cluster.data.rglob(f"{database_id(key.account, 'app', 'bad')}.sqlite"))
    finally:
        cluster.stop()


def _sqlite3() -> str:
    """The sqlite3 shell: Debian's, installed on a machine that lacks it (as the browser test installs chromium)."""
    found = shutil.which("sqlite3")
    if found is None:
        subprocess.run(["apt-get", "install", "-y", "-q", "sqlite3"], check=True, capture_output=True, timeout=600)
        found = shutil.which("sqlite3")
    assert found is not None, "could not install the sqlite3 shell"
    return found


def test_a_database_moved_by_scaling_keeps_its_history(tmp_path: Path, key: Key) -> None:
    with replica_env("dir", tmp_path / "replica") as (env, target):
        cluster = start_cluster(tmp_path / "cluster", shards=1, env=env, membership_file=True)
        try:
            tenants = [f"m{i}" for i in range(8)]
            with Client(cluster.address) as client:
                for tenant in tenants:
                    write(client, key, tenant, range(5))
                for tenant in tenants:
                    replicated(target, database_id(key.account, "app", tenant), has(set(range(5))))
                before_move = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
                time.sleep(0.01)
                cluster.scale(2)
                moved = [tenant for tenant in tenants
                         if Ring(cluster.names).owner(database_id(key.account, "app", tenant)) == "shard-1"]
                assert moved, "no database moved: the test proves nothing"
                for tenant in moved:
                    write(client, key, tenant, range(5, 10))  # on its new shard
                for tenant in moved:
                    replicated(target, database_id(key.account, "app", tenant), has(set(range(10))))
                tenant = moved[0]
                loot(cluster, "restore", "--db", "app", "--tenant", tenant, "--at", before_move, "--to-tenant",
                     "before-move", key=key, data=True)
                assert numbers(client, key, "before-move") == set(range(5)), "history from its first shard"
                loot(cluster, "restore", "--db", "app", "--tenant", tenant, "--to-tenant", "after-move", key=key,
                     data=True)
                assert numbers(client, key, "after-move") == set(range(10))
        finally:
            cluster.stop()


def _replicator_pid(shard_pid: int) -> int | None:
    """The litestream process the shard runs, if any."""
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(shard_pid) and fields.get("Name", "").strip() == "litestream":
            return int(status.parent.name)
    return None


def _wait_for(condition, what: str, patience: float = 60.0):
    deadline = time.monotonic() + patience
    while not (found := condition()):
        assert time.monotonic() < deadline, what
        time.sleep(0.1)
    return found


def test_the_shard_supervises_its_replicator(tmp_path: Path, key: Key) -> None:
    with replica_env("dir", tmp_path / "replica") as (env, target):
        cluster = start_cluster(tmp_path / "cluster", shards=1, env=env)
        try:
            shard = cluster.shards["shard-0"]
            first = _wait_for(lambda: _replicator_pid(shard.process.pid), "litestream never started")
            os.kill(first, signal.SIGKILL)
            second = _wait_for(lambda: (pid := _replicator_pid(shard.process.pid)) != first and pid,
                               "litestream was not started again")
            with Client(cluster.address) as client:
                write(client, key, "alice", range(3))
            replicated(target, database_id(key.account, "app", "alice"), has(set(range(3))))

            shard.signal(signal.SIGKILL)  # the shard dies outright: its replicator goes with it
            shard.wait(10)
            _wait_for(lambda: not Path(f"/proc/{second}").exists() or "Z" in _state(second),
                      "litestream outlived its shard")
            cluster.restart_shard("shard-0")
            third = _wait_for(lambda: _replicator_pid(shard.process.pid), "litestream never started")
            shard.signal(signal.SIGTERM)  # stopped with the shard
            shard.wait(30)
            _wait_for(lambda: not Path(f"/proc/{third}").exists() or "Z" in _state(third),
                      "litestream outlived its shard")
        finally:
            cluster.stop()


def _state(pid: int) -> str:
    try:
        return next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("State"))
    except (OSError, StopIteration):
        return "Z"
