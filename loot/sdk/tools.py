"""LLM tool definitions derived from Describe, and the SQL each tool runs.

Tools: `query` (read-only SQL: the text is wrapped as a subquery, so only a
SELECT can run) and, per table whose name is a plain identifier,
`insert_<table>`, `update_<table>` and `delete_<table>`, whose JSON Schemas
come from the columns. BLOB columns are left out of the write tools (JSON has
no bytes). Every tool runs with the same token, so filters and rules apply.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from loot.v1 import database_pb2 as pb

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
ACTIONS = ("insert", "update", "delete")


def _json_type(sql_type: str) -> list[str] | None:
    """JSON Schema types for a declared SQL type, by SQLite's affinity rules; None for BLOB."""
    declared = sql_type.upper()
    if "INT" in declared:
        return ["integer"]
    if any(word in declared for word in ("CHAR", "CLOB", "TEXT")):
        return ["string"]
    if "BLOB" in declared:
        return None
    if not declared:
        return ["integer", "number", "string"]
    return ["number"]


def _column_schema(column: pb.TableColumn) -> dict[str, Any]:
    kinds = _json_type(column.type) + ([] if column.not_null else ["null"])
    return {"type": kinds[0] if len(kinds) == 1 else kinds, "description": f"{column.name} {column.type}".strip()}


def _table_tools(table: pb.Table) -> list[dict[str, Any]]:
    columns = {c.name: _column_schema(c) for c in table.columns if _json_type(c.type) is not None and _PLAIN.fullmatch(c.name)}
    required = [c.name for c in table.columns if c.name in columns and c.not_null and not c.HasField("default")
                and not (c.pk and "INT" in c.type.upper())]
    where = {"type": "object", "properties": columns, "minProperties": 1, "additionalProperties": False,
             "description": "columns that must equal these values"}
    values = {"type": "object", "properties": columns, "additionalProperties": False}
    return [
        _tool(f"insert_{table.name}", f"Insert one row into {table.name}.", {**values, "required": required}),
        _tool(f"update_{table.name}", f"Update rows of {table.name} matching `where` with the values in `set`.",
              {"type": "object", "properties": {"where": where, "set": {**values, "minProperties": 1}},
               "required": ["where", "set"], "additionalProperties": False}),
        _tool(f"delete_{table.name}", f"Delete rows of {table.name} matching `where`.",
              {"type": "object", "properties": {"where": where}, "required": ["where"], "additionalProperties": False}),
    ]


def _tool(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "description": description, "input_schema": schema}


QUERY_TOOL = _tool(
    "query",
    "Run one read-only SQL SELECT on this SQLite database and return its rows.",
    {"type": "object", "properties": {"sql": {"type": "string"}, "params": {"type": "array", "items": {}}},
     "required": ["sql"], "additionalProperties": False},
)


def from_description(description: pb.DescribeResponse) -> list[dict[str, Any]]:
    tables = [table for table in description.tables if _PLAIN.fullmatch(table.name)]
    tables_text = "; ".join(f"{t.name}({', '.join(c.name + ' ' + c.type for c in t.columns)})"
                            + " [no filter: reads as empty]" * t.no_filter for t in tables)
    query = {**QUERY_TOOL, "description": f"{QUERY_TOOL['description']} Tables: {tables_text or 'none'}."}
    return [query] + [tool for table in tables for tool in _table_tools(table)]


def _quote(name: str) -> str:
    if not _PLAIN.fullmatch(name):
        raise ValueError(f"not a plain column name: {name!r}")
    return f'"{name}"'


def _conditions(where: Mapping[str, Any]) -> tuple[str, list[Any]]:
    if not where:
        raise ValueError("`where` needs at least one column")
    return " AND ".join(f"{_quote(column)} IS ?" for column in where), list(where.values())


def to_statement(name: str, arguments: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """The SQL and parameters that tool `name` runs with `arguments`."""
    if name == "query":
        sql = str(arguments["sql"]).strip().rstrip(";")
        return f"SELECT * FROM ({sql})", list(arguments.get("params", []))
    action, _, table = name.partition("_")
    if action not in ACTIONS or not _PLAIN.fullmatch(table):
        raise ValueError(f"unknown tool {name!r}")
    if action == "insert":
        columns = ", ".join(_quote(column) for column in arguments)
        marks = ", ".join("?" for _ in arguments)
        sql = f'INSERT INTO "{table}" ({columns}) VALUES ({marks})' if arguments else f'INSERT INTO "{table}" DEFAULT VALUES'
        return sql, list(arguments.values())
    condition, condition_params = _conditions(arguments.get("where", {}))
    if action == "delete":
        return f'DELETE FROM "{table}" WHERE {condition}', condition_params
    assignments = arguments.get("set") or {}
    if not assignments:
        raise ValueError("`set` needs at least one column")
    sets = ", ".join(f"{_quote(column)} = ?" for column in assignments)
    return f'UPDATE "{table}" SET {sets} WHERE {condition}', list(assignments.values()) + condition_params
