"""Describe a database's schema for tools and agents (loot.v1.DescribeResponse).

Run privileged (`access.for_connection(conn).privileged()`): unqualified names
would be the filtered TEMP views, so every name here is qualified with main.

System and internal tables (`_filters`, `_rules`, `_loot*`, `sqlite_*`) are not
listed as tables; filters and rules are listed from their tables, and a table
no filter names is marked `no_filter` (the request's SQL reads it as empty). The schema
hash covers structure (columns as PRAGMA table_xinfo reports them, indexes,
views, triggers), not the stored CREATE TABLE text, which SQLite rewrites on
ADD COLUMN.
"""

from __future__ import annotations

import hashlib

import apsw

from loot.v1 import database_pb2 as pb
from loot.shard import system_tables
from loot.shard.sql_text import fold

_OBJECTS = "SELECT type, name, tbl_name, sql FROM main.sqlite_schema WHERE sql IS NOT NULL ORDER BY type, name"


def describe(conn: apsw.Connection) -> pb.DescribeResponse:
    response = pb.DescribeResponse()
    for kind, name, table, sql in conn.execute(_OBJECTS).fetchall():
        if system_tables.is_system_table(table):
            continue
        if kind == "table":
            response.tables.append(pb.Table(name=name, sql=sql, columns=_columns(conn, name)))
        elif kind == "index":
            response.indexes.append(_index(conn, name, table, sql))
        elif kind == "view":
            response.views.append(pb.View(name=name, sql=sql))
        elif kind == "trigger":
            response.triggers.append(pb.Trigger(name=name, table=table, sql=sql))
    response.filters.extend(pb.Filter(table=t, name=n, predicate=p) for t, n, p in conn.execute(
        f"SELECT table_name, filter_name, predicate FROM main.{system_tables.FILTERS} ORDER BY 1, 2"))
    response.rules.extend(pb.Rule(table=t, operation=o, name=n, predicate=p) for t, o, n, p in conn.execute(
        f"SELECT table_name, operation, rule_name, predicate FROM main.{system_tables.RULES} ORDER BY 1, 3"))
    _mark_unfiltered(conn, response)
    response.schema_hash = schema_hash(response)
    return response


def schema_hash(response: pb.DescribeResponse) -> str:
    """SHA-256 over the structure: tables without their stored SQL, indexes, views, triggers."""
    structure = pb.DescribeResponse(indexes=response.indexes, views=response.views, triggers=response.triggers)
    structure.tables.extend(pb.Table(name=table.name, columns=table.columns) for table in response.tables)
    return hashlib.sha256(structure.SerializeToString(deterministic=True)).hexdigest()


def _mark_unfiltered(conn: apsw.Connection, response: pb.DescribeResponse) -> None:
    """`no_filter` on each ordinary table no filter names: the request's SQL reads it as empty."""
    plain = {fold(name) for name, in conn.execute("SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table'")}
    filtered = {fold(f.table) for f in response.filters}
    for table in response.tables:
        table.no_filter = fold(table.name) in plain - filtered


def _columns(conn: apsw.Connection, table: str) -> list[pb.TableColumn]:
    columns = []
    for _, name, kind, not_null, default, pk, hidden in conn.execute("SELECT * FROM pragma_table_xinfo(?, 'main')", (table,)):
        if hidden == 1:  # a virtual table's hidden column
            continue
        column = pb.TableColumn(name=name, type=kind, pk=pk, not_null=bool(not_null))
        if default is not None:
            column.default = default
        columns.append(column)
    return columns


def _index(conn: apsw.Connection, name: str, table: str, sql: str) -> pb.Index:
    columns = [column or "<expression>" for _, _, column in conn.execute("SELECT * FROM pragma_index_info(?, 'main')", (name,))]
    unique = conn.execute("SELECT \"unique\" FROM pragma_index_list(?, 'main') WHERE name = ?", (table, name)).fetchone()
    return pb.Index(name=name, table=table, columns=columns, unique=bool(unique and unique[0]), sql=sql)
