"""Applying the token's schema claim to a database (SPEC §4).

For now the claim is executed as is on a database that has no tables yet; the
declarative engine (plan by structure, add-only tables, converging derived
objects, newest wins) replaces this function behind the same signature.
"""

from __future__ import annotations

import apsw

from shard.sql_errors import fault_from_sqlite


def apply(conn: apsw.Connection, claim: str) -> list[str]:
    """Move the database to the schema `claim` describes; say what changed."""
    if not claim.strip() or _has_tables(conn):
        return []
    try:
        with conn:
            conn.execute(claim)
    except apsw.Error as error:
        raise fault_from_sqlite(error)
    return ["applied the schema to a new database"]


def _has_tables(conn: apsw.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_schema LIMIT 1").fetchone() is not None
