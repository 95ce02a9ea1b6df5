"""What must hold after any schema claim is applied or refused (docs/schema.md), for the schema tests."""

from __future__ import annotations

from pathlib import Path

import apsw

from loot.status import Fault
from loot.shard import schema, system_tables
from loot.shard.schema.inspect import Catalog
from loot.shard.schema.validate import build
from loot.shard.storage import Storage

DATABASE_ID = "ab" * 32


def open_database(directory: Path) -> apsw.Connection:
    """A database file opened the way a shard opens it (WAL, foreign keys, system tables)."""
    return Storage(directory).open(DATABASE_ID).conn


def snapshot(conn: apsw.Connection) -> tuple[list[tuple], dict[str, tuple[list[str], list[tuple]]]]:
    """The whole schema and every row of every table (by column name), to tell whether anything changed."""
    objects = list(conn.execute("SELECT type, name, tbl_name, sql FROM main.sqlite_schema ORDER BY rowid"))
    tables = [name for kind, name, _, sql in objects if kind == "table" and not sql.upper().startswith("CREATE VIRTUAL")]
    return objects, {name: (columns(conn, name), rows(conn, name, columns(conn, name))) for name in tables}


def columns(conn: apsw.Connection, table: str) -> list[str]:
    return [name for (name,) in conn.execute("SELECT name FROM pragma_table_xinfo(?, 'main') WHERE hidden != 1", (table,))]


def rows(conn: apsw.Connection, table: str, names: list[str]) -> list[tuple]:
    listed = ", ".join(map(quoted, names))
    return sorted(conn.execute(f"SELECT {listed} FROM main.{quoted(table)}"), key=repr)


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def fill(conn: apsw.Connection) -> None:
    """One row in every table that takes a row of defaults, so empty-table-only behaviour shows."""
    for (name,) in conn.execute("SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table' "
                                "AND name NOT LIKE 'sqlite%' AND name NOT LIKE '\\_%' ESCAPE '\\'").fetchall():
        try:
            conn.execute(f"INSERT INTO main.{quoted(name)} DEFAULT VALUES")
        except apsw.ConstraintError:
            pass


def schema_version(conn: apsw.Connection) -> int:
    return conn.execute("PRAGMA schema_version").fetchone()[0]


def apply_checked(conn: apsw.Connection, claim: str) -> list[str] | Fault:
    """Apply `claim` as a never-seen schema and check every invariant; return its changes or its refusal."""
    before = snapshot(conn)
    try:
        changes = schema.apply(conn, claim)
    except Fault as refusal:
        assert refusal.code.name in ("FAILED_PRECONDITION", "INVALID_ARGUMENT"), refusal.message
        assert refusal.metadata, "a refusal names what it refused"
        assert snapshot(conn) == before, "a refused schema changed the database"
        return refusal
    assert_matches_claim(conn, claim)
    assert_nothing_lost(before, conn)
    version = schema_version(conn)
    assert schema.apply(conn, claim) == []
    assert schema_version(conn) == version, "a second apply changed the schema"
    return changes


def assert_matches_claim(conn: apsw.Connection, claim: str) -> None:
    """Tables and columns of the claim exist as claimed; derived objects and system rows are exactly the claim's."""
    if not claim.strip():
        return
    pristine = build(claim)
    live, claimed = Catalog(conn), Catalog(pristine)
    for key in claimed.tables:
        assert key in live.tables, f"table {key} missing"
        have, want = live.table(key), claimed.table(key)
        for name, column in want.columns.items():
            assert have.columns.get(name) == column, f"column {key}.{name}: {have.columns.get(name)} != {column}"
    assert set(live.derived) == set(claimed.derived)
    for key, entry in claimed.derived.items():
        assert live.signature(live.derived[key]) == claimed.signature(entry), key
    for table in ("_filters", "_rules"):
        assert live.rows(table) == claimed.rows(table)
    pristine.close()


def assert_nothing_lost(before: tuple[list[tuple], dict[str, tuple[list[str], list[tuple]]]],
                        conn: apsw.Connection) -> None:
    """Every user table and column that existed still holds exactly its rows."""
    for table, (old_columns, old_rows) in before[1].items():
        if not system_tables.is_system_table(table):
            assert rows(conn, table, old_columns) == old_rows, f"rows of {table} changed"
