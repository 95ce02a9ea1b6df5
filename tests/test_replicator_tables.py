"""The replicator's tables in every database (_litestream_seq, _litestream_lock: docs/backups.md) are
reserved: a schema claim neither drops them nor may name them, and requests cannot write them; a shard
whose open-files limit cannot hold its databases' replication says so."""

from __future__ import annotations

import resource

import apsw
import grpc
import pytest

from loot.shard import schema, system_tables
from loot.shard.replicator import descriptors_short
from loot.shard.schema import validate
from loot.status import Fault

# What Litestream runs in each database it replicates.
LITESTREAM_DDL = ("CREATE TABLE IF NOT EXISTS _litestream_seq (id INTEGER PRIMARY KEY, seq INTEGER);"
                  "CREATE TABLE IF NOT EXISTS _litestream_lock (id INTEGER);")


def test_a_claim_leaves_the_replicators_tables_alone() -> None:
    conn = apsw.Connection(":memory:")
    system_tables.create(conn)
    schema.apply(conn, "CREATE TABLE a (x INTEGER)")
    conn.execute(LITESTREAM_DDL)
    schema.apply(conn, "CREATE TABLE a (x INTEGER); CREATE TABLE b (y TEXT)")
    tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
    assert {"a", "b", "_litestream_seq", "_litestream_lock"} <= tables


@pytest.mark.parametrize("name", ["_litestream_seq", "_LiteStream_mine"])
def test_a_claim_may_not_name_them(name: str) -> None:
    with pytest.raises(Fault) as refused:
        validate.build(f"CREATE TABLE {name} (id INTEGER)")
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.reason == "SCHEMA_STATEMENT_NOT_ALLOWED"


def test_they_are_system_tables() -> None:
    assert system_tables.is_system_table("_litestream_lock")


def test_a_short_open_files_limit_is_told() -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert descriptors_short(0) is None
    said = descriptors_short(hard)  # five descriptors per database: never enough for `hard` databases
    assert (said is None) if hard == resource.RLIM_INFINITY else ("open-files limit" in said)
