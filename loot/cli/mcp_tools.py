"""The MCP tools of one database (docs/mcp.md#tools).

`describe`; the SDK's read-only `query` (loot/sdk/tools.py); and, unless the
token is read-only, `execute` (one statement of any kind) and the SDK's
`insert_/update_/delete_<table>` tools. The list is derived from Describe on
every call, so it follows schema changes. Arguments are checked against the
tool's JSON Schema before any SQL is built; every call runs with the served
token, so its filters and rules bound what a tool can read and write.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import mcp_types as types
from google.protobuf import json_format
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from loot.cli import mcp_results as results
from loot.errors import LootError
from loot.sdk import tools
from loot.sdk.database import AsyncDatabase
from loot.v1 import database_pb2 as pb

NO_ARGUMENTS = {"type": "object", "properties": {}, "additionalProperties": False}
DESCRIBE = {"name": "describe", "input_schema": NO_ARGUMENTS, "description": (
    "The database's tables and columns, indexes, views and triggers, and the filters and rules that decide "
    "which rows this token reads and which writes it may make.")}
EXECUTE = {"name": "execute", "input_schema": tools.QUERY_TOOL["input_schema"], "description": (
    "Run one SQL statement on this SQLite database: INSERT, UPDATE, DELETE (with RETURNING if you want rows "
    "back) or SELECT, with `?` parameters in `params`. The database's rules decide which writes are allowed.")}
READS = {"describe", "query"}
WRITING = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|ALTER)\b", re.IGNORECASE)


class DatabaseTools:
    def __init__(self, db: AsyncDatabase, *, readonly: bool, bounds: results.Bounds):
        self.db, self.readonly, self.bounds = db, readonly, bounds

    async def list(self) -> list[types.Tool]:
        _, offered = await self._offered()
        return [_as_mcp(tool) for tool in offered.values()]

    async def call(self, name: str, arguments: Mapping[str, Any]) -> types.CallToolResult:
        """The tool's result, or a tool error saying why not: a call never raises on a Loot error."""
        try:
            return await self._call(name, arguments)
        except LootError as error:
            return results.loot_failure(error)

    async def _offered(self) -> tuple[pb.DescribeResponse, dict[str, dict[str, Any]]]:
        """The description and the tools it gives this token, by name."""
        description = await self.db.describe()
        query, *writes = tools.from_description(description)
        offered = [DESCRIBE, query] + ([] if self.readonly else [EXECUTE, *writes])
        return description, {tool["name"]: tool for tool in offered}

    async def _call(self, name: str, arguments: Mapping[str, Any]) -> types.CallToolResult:
        description, offered = await self._offered()
        tool = offered.get(name)
        if tool is None:
            return self._not_offered(name, offered)
        problem = best_match(Draft202012Validator(tool["input_schema"]).iter_errors(arguments))
        if problem is not None:
            where = "" if problem.json_path == "$" else f" at {problem.json_path}"
            return results.failure("INVALID_ARGUMENT", "BAD_ARGUMENTS", f"{name}{where}: {problem.message}")
        if name == "describe":
            return results.success(json_format.MessageToDict(description, preserving_proto_field_name=True))
        if name == "execute":
            return results.rows(await self.db.execute(arguments["sql"], arguments.get("params", [])), self.bounds)
        sql, params = tools.to_statement(name, arguments)
        if name == "query":
            return await self._query(sql, params, arguments["sql"])
        return results.rows(await self.db.execute(sql, params), self.bounds)

    async def _query(self, sql: str, params: list[Any], asked: str) -> types.CallToolResult:
        try:  # one row past the cap says there are more, without reading them all
            result = await self.db.execute(f"{sql} LIMIT {self.bounds.max_rows + 1}", params)
        except LootError as error:
            if not WRITING.match(asked):
                raise
            # A write inside the SELECT wrapper fails as a syntax error: say what was wrong instead.
            hint = ("this token is read-only, so nothing can write" if self.readonly
                    else "write with execute or the insert_/update_/delete_<table> tools")
            return results.failure(error.code.name, error.reason, f"{error.message}: query runs one SELECT; {hint}",
                                   error.metadata)
        return results.rows(result, self.bounds, limited=True)

    def _not_offered(self, name: str, offered: Mapping[str, Any]) -> types.CallToolResult:
        action, _, _ = name.partition("_")
        if self.readonly and (name == EXECUTE["name"] or action in tools.ACTIONS):
            return results.failure("PERMISSION_DENIED", "READONLY", f"{name} is not offered: the token is read-only "
                                   f"(`readonly: true`), so this server offers {', '.join(offered)}")
        return results.failure("INVALID_ARGUMENT", "UNKNOWN_TOOL", f"no tool {name!r}; the tools are {', '.join(offered)}")


def _as_mcp(tool: dict[str, Any]) -> types.Tool:
    name = tool["name"]
    annotations = types.ToolAnnotations(read_only_hint=name in READS,
                                        destructive_hint=name not in READS and not name.startswith("insert_"))
    return types.Tool(name=name, description=tool["description"], input_schema=tool["input_schema"],
                      annotations=annotations)
