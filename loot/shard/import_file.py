"""A SQLite file as a new database (`loot import`): checked as a schema claim is, then installed.

The file's own schema (its tables, indexes, views and triggers, and its _filters and _rules rows)
is read back as the claim that would have made it and built by the claim's checks
(loot/shard/schema/validate.py): a file whose schema a claim would refuse is refused, with the
same reason. Its schema history, if any, stays: the first request's claim is compared with it as
with any database's.
"""

from __future__ import annotations

from pathlib import Path

import apsw
import grpc

from loot.status import Fault
from loot.shard import system_tables
from loot.shard.schema import validate
from loot.shard.schema.history import TABLE as HISTORY
from loot.shard.schema.history import current_hash

# Reserved tables a file may bring: Loot's own (an export with its internal tables) and the replicator's.
_CARRIED = {system_tables.FILTERS, system_tables.RULES, HISTORY.lower(), "_litestream_seq", "_litestream_lock"}


def check(path: Path) -> str:
    """Refuse (INVALID_ARGUMENT) a file that is not a whole SQLite database or whose schema a claim
    could not state; else give it the system tables every database has and return its schema hash."""
    try:
        conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READWRITE)
        try:
            if conn.execute("PRAGMA integrity_check").fetchall() != [("ok",)]:
                raise _refused("the file fails PRAGMA integrity_check")
            validate.build(claim_of(conn)).close()
            system_tables.create(conn)
            conn.execute("PRAGMA journal_mode=DELETE")  # one self-contained file to install
            return current_hash(conn)
        finally:
            conn.close()
    except apsw.Error as error:  # not a database, encrypted, truncated...
        raise _refused(f"not a SQLite database: {error}") from None


def claim_of(conn: apsw.Connection) -> str:
    """The schema claim that builds this database's schema and policy rows."""
    statements = []
    for name, table, sql in conn.execute(
            "SELECT name, tbl_name, sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY rowid"):
        if system_tables.is_system_table(name) or system_tables.is_system_table(table):
            if table.lower() not in _CARRIED and not name.lower().startswith("sqlite_"):
                raise _refused(f"the file has a table named {table!r}, a reserved name")
            continue
        statements.append(sql)
    for policy in (system_tables.FILTERS, system_tables.RULES):
        if conn.execute("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?", (policy,)).fetchone():
            columns = [row[1] for row in conn.execute(f"PRAGMA table_info({policy})")]
            quoted = " || ', ' || ".join(f"quote({column})" for column in columns)
            statements += [row[0] for row in conn.execute(
                f"SELECT 'INSERT INTO {policy} VALUES (' || {quoted} || ')' FROM {policy}")]
    return ";\n".join(statements)


def _refused(why: str) -> Fault:
    return Fault(grpc.StatusCode.INVALID_ARGUMENT, "IMPORT_REFUSED", f"import refused: {why}")
