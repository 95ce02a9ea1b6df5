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
    if not claim.strip() or _has_user_tables(conn):
        return []
    try:
        with conn:
            conn.execute(claim)
    except apsw.Error as error:
        raise fault_from_sqlite(error)
    return ["applied the schema to a new database"]


def _has_user_tables(conn: apsw.Connection) -> bool:
    query = "SELECT 1 FROM sqlite_schema WHERE name NOT IN ('_filters', '_rules') AND name NOT LIKE 'sqlite_%' LIMIT 1"
    return conn.execute(query).fetchone() is not None
