"""The tables every database has (docs/access.md): filters and rules, created with the file."""

from __future__ import annotations

import apsw

from loot.shard.sql_text import fold

FILTERS = "_filters"
RULES = "_rules"
# Tables the request's own SQL may never write; a schema claim neither lists nor drops them.
# `_litestream_seq` and `_litestream_lock` are the replicator's (loot/shard/replicator.py).
PROTECTED_PREFIXES = ("_filters", "_rules", "_loot", "_litestream", "sqlite_")

DDL = """
CREATE TABLE IF NOT EXISTS _filters (table_name TEXT NOT NULL, filter_name TEXT NOT NULL,
  predicate TEXT NOT NULL, PRIMARY KEY (table_name, filter_name));
CREATE TABLE IF NOT EXISTS _rules (table_name TEXT NOT NULL, operation TEXT NOT NULL,
  rule_name TEXT NOT NULL, predicate TEXT NOT NULL, PRIMARY KEY (table_name, rule_name));
"""


def create(conn: apsw.Connection) -> None:
    with conn:
        conn.execute(DDL)


def is_system_table(name: str) -> bool:
    return fold(name).startswith(PROTECTED_PREFIXES)
