"""Hostile SQL against a real cluster (docs/shard.md#the-sandbox): each is refused with a clear
status, writes no file, and the shard keeps serving other databases."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.client import Client, rows
from loot.ids import database_id
from loot.cli.local_cluster import LocalCluster
from loot.ring import Ring
from loot.tokens import Key, mint
from tests.conftest import refused, start_cluster
from tests.schemas import open_table

pytestmark = pytest.mark.cluster  # a second, limited cluster from its own fixture

NOTES = open_table("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)", "notes")
DENIED = grpc.StatusCode.PERMISSION_DENIED


@pytest.fixture(scope="module")
def victim(cluster: LocalCluster, client: Client, key: Key) -> Path:
    """Another tenant's database, with a secret in it; returns its file."""
    client.execute(mint(key, "app", "victim", schema=NOTES), "INSERT INTO notes (body) VALUES ('secret')")
    owner = Ring(cluster.names).owner(database_id(key.account, "app", "victim"))
    [path] = (cluster.data / owner).rglob(f"{database_id(key.account, 'app', 'victim')}.sqlite")
    return path


@pytest.fixture
def attacker(client: Client, key: Key, victim: Path) -> Iterator[str]:
    """A token for the attacker's database; after each test the victim must still be served intact."""
    token = mint(key, "app", "attacker", schema=NOTES)
    client.execute(token, "SELECT 1")  # create it, so any file appearing later is the attack's
    yield token
    assert rows(client.execute(mint(key, "app", "victim"), "SELECT body FROM notes").result) == [("secret",)]


def _sql_files(cluster: LocalCluster) -> set[Path]:
    """Every file under the shards' directories, but the spare copies they write ahead in the background."""
    return {p for p in cluster.data.rglob("*") if p.is_file() and not p.parent.name.startswith("spares-")}


# Each refusal names its kind (reasons of the one authorizer, loot/shard/access/authorizer.py; NOT_AUTHORIZED
# where SQLite refuses by itself).
@pytest.mark.parametrize("sql, reason", [
    ("ATTACH DATABASE '{victim}' AS stolen", "FILE_ACCESS"),
    ("ATTACH '/tmp/loot-attack.sqlite' AS x", "FILE_ACCESS"),
    ("ATTACH ':memory:' AS x", "FILE_ACCESS"),
    ("DETACH DATABASE main", "FILE_ACCESS"),
    ("VACUUM", "NOT_AUTHORIZED"),
    ("VACUUM INTO '{dir}/copy.sqlite'", "NOT_AUTHORIZED"),
    ("CREATE TABLE evil (x)", "SCHEMA_CHANGE"),
    ("CREATE TEMP TABLE evil (x)", "SCHEMA_CHANGE"),
    ("CREATE TEMP VIEW notes AS SELECT 1", "SCHEMA_CHANGE"),
    ("CREATE TEMP TRIGGER t BEFORE INSERT ON notes BEGIN SELECT 1; END", "SCHEMA_CHANGE"),
    ("CREATE INDEX i ON notes (body)", "SCHEMA_CHANGE"),
    ("DROP TABLE notes", "SCHEMA_CHANGE"),
    ("ALTER TABLE notes ADD COLUMN x", "SCHEMA_CHANGE"),
    ("ALTER TABLE notes RENAME TO gone", "SCHEMA_CHANGE"),
    ("PRAGMA writable_schema = ON", "PRAGMA"),
    ("PRAGMA journal_mode = DELETE", "PRAGMA"),
    ("PRAGMA synchronous = OFF", "PRAGMA"),
    ("PRAGMA foreign_keys = OFF", "PRAGMA"),
    ("PRAGMA database_list", "PRAGMA"),
    ("BEGIN", "TRANSACTION_CONTROL"),
    ("COMMIT", "TRANSACTION_CONTROL"),
    ("ROLLBACK", "TRANSACTION_CONTROL"),
    ("SAVEPOINT s", "TRANSACTION_CONTROL"),
    ("RELEASE s", "TRANSACTION_CONTROL"),
    ("SELECT load_extension('/lib/x86_64-linux-gnu/libc.so.6')", "LOAD_EXTENSION"),
    ("INSERT INTO _filters VALUES ('notes', 'f', 'true')", "SYSTEM_TABLE"),
    ("INSERT INTO main._rules VALUES ('notes', 'write', 'r', 'true')", "SYSTEM_TABLE"),
    ("DELETE FROM _filters", "SYSTEM_TABLE"),
    ("UPDATE sqlite_master SET sql = 'x'", "NOT_AUTHORIZED"),
    ("INSERT INTO sqlite_schema VALUES ('table', 'x', 'x', 0, 'CREATE TABLE x (y)')", "SCHEMA_CHANGE"),
    ("ANALYZE", "SCHEMA_CHANGE"),
])
def test_sandbox_refuses(cluster: LocalCluster, client: Client, attacker: str, victim: Path, sql: str,
                         reason: str) -> None:
    before = _sql_files(cluster)
    sql = sql.format(victim=victim, dir=victim.parent)
    info = refused(lambda: client.execute(attacker, sql), DENIED, reason)
    assert info.metadata["statement_index"] == "0"
    created = {p for p in _sql_files(cluster) - before if not p.name.endswith(("-wal", "-shm"))}
    assert created == set(), f"{sql!r} wrote {created}"
    assert not Path("/tmp/loot-attack.sqlite").exists()


def test_refusal_message_says_why(client: Client, attacker: str) -> None:
    with pytest.raises(grpc.RpcError) as failed:
        client.execute(attacker, "DROP TABLE notes")
    assert "schema changes" in failed.value.details()


@pytest.mark.parametrize("sql", ["PRAGMA table_info(notes)", "PRAGMA integrity_check", "PRAGMA user_version",
                                 "SELECT name FROM pragma_table_list", "PRAGMA foreign_key_check",
                                 "SELECT * FROM _filters", "SELECT name FROM sqlite_master"])
def test_read_only_introspection_is_allowed(client: Client, attacker: str, sql: str) -> None:
    client.execute(attacker, sql)


def test_oversized_values_and_results_are_resource_exhausted(client: Client, attacker: str) -> None:
    refused(lambda: client.execute(attacker, "SELECT randomblob(2e9)"), grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_BIG")
    # Each value under the limit, the row 640 MB: refused before SQLite makes it (it took shards past their
    # memory), here by the value-operations budget (40 randomblobs), which also bounds its time.
    forty = "SELECT " + ", ".join(["randomblob(16000000)"] * 40)
    refused(lambda: client.execute(attacker, forty), grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_EXPENSIVE")
    # Within that budget, the row 320 MB: no value may exceed the result size / the row's 20 columns.
    twenty = "SELECT " + ", ".join(["randomblob(16000000)"] * 20)
    info = refused(lambda: client.execute(attacker, twenty), grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_BIG")
    assert info.metadata["limit"] == str(16 * 1024 * 1024 // 20)
    hundred_mb = ("WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 100000) "
                  "SELECT n, randomblob(1000) FROM c")
    info = refused(lambda: client.execute(attacker, hundred_mb), grpc.StatusCode.RESOURCE_EXHAUSTED, "RESULT_TOO_LARGE")
    assert info.metadata["limit"] == str(16 * 1024 * 1024)


def test_oversized_requests_are_invalid_argument(client: Client, attacker: str) -> None:
    long_sql = "SELECT '" + "x" * (2 * 1024 * 1024) + "'"
    refused(lambda: client.execute(attacker, long_sql), grpc.StatusCode.INVALID_ARGUMENT, "SQL_TOO_LONG")
    many = "SELECT " + ", ".join("?" for _ in range(40_000))
    refused(lambda: client.execute(attacker, many, list(range(40_000))), grpc.StatusCode.INVALID_ARGUMENT,
            "TOO_MANY_PARAMETERS")
    refused(lambda: client.execute(attacker, many), grpc.StatusCode.INVALID_ARGUMENT, "SQL_ERROR")


INFINITE = "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c) SELECT count(*) FROM c"


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    """A one-shard cluster with small limits, so limit tests run fast."""
    env = {"LOOT_STATEMENT_SECONDS": "1", "LOOT_DATABASE_BYTES": str(256 * 1024), "LOOT_RESULT_BYTES": str(256 * 1024)}
    cluster = start_cluster(tmp_path_factory.mktemp("limited"), shards=1, env=env)
    with Client(cluster.address) as client:
        yield client
    cluster.stop()


def test_runaway_statement_is_stopped_at_the_time_limit(limited: Client, key: Key) -> None:
    token = mint(key, "app", "runaway")
    started = time.monotonic()
    info = refused(lambda: limited.execute(token, INFINITE), grpc.StatusCode.DEADLINE_EXCEEDED, "INTERRUPTED")
    assert 0.9 < time.monotonic() - started < 3
    assert info.metadata["statement_index"] == "0"
    assert rows(limited.execute(token, "SELECT 1").result) == [(1,)]


def test_runaway_statement_stops_at_the_clients_deadline(client: Client, key: Key) -> None:
    token = mint(key, "app", "impatient")
    client.execute(token, "SELECT 1")  # created beforehand, so only the statement runs under the deadline
    with pytest.raises(grpc.RpcError) as failed:
        client.execute(token, INFINITE, timeout=0.5)
    assert failed.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    started = time.monotonic()
    assert rows(client.execute(token, "SELECT 1").result) == [(1,)]
    # Left running, the statement would hold the database for its whole 5 s limit.
    assert time.monotonic() - started < 4, "the shard kept running the abandoned statement"


def test_database_size_limit_rolls_back(limited: Client, key: Key) -> None:
    token = mint(key, "app", "big", schema=open_table("CREATE TABLE blobs (b BLOB)", "blobs"))
    limited.execute(token, "INSERT INTO blobs VALUES (randomblob(1000))")
    fill = "INSERT INTO blobs SELECT randomblob(1000) FROM (WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM c WHERE n < 1000) SELECT n FROM c)"
    refused(lambda: limited.batch(token, [("INSERT INTO blobs VALUES (x'00')", ()), (fill, ())]),
            grpc.StatusCode.RESOURCE_EXHAUSTED, "DATABASE_FULL")
    assert rows(limited.execute(token, "SELECT count(*) FROM blobs").result) == [(1,)]


def test_the_result_budget_counts_rows_as_sent_empty_strings_included(limited: Client, key: Key) -> None:
    # 1,000 rows of 100 empty strings hold no value bytes at all, but take about 400 KB on the wire.
    columns = ", ".join(["''"] * 100)
    empties = f"WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 1000) SELECT {columns} FROM c"
    info = refused(lambda: limited.execute(mint(key, "app", "empties"), empties), grpc.StatusCode.RESOURCE_EXHAUSTED,
                   "RESULT_TOO_LARGE")
    assert info.metadata["limit"] == str(256 * 1024)
