"""What a `loot mcp` tool call returns (docs/mcp.md#results).

A success is structured content (JSON) and the same JSON as text, as the MCP
specification asks of tools with structured output. Rows are bounded twice: at
most `max_rows` of them, and no more than fit in `max_chars` characters of JSON;
a cut result says `truncated` and how to ask for less. A failure is a tool error
(`isError`) with the code, reason and message, so the agent can read it and try
again: the MCP server itself never fails on a Loot error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import mcp_types as types

from loot.cli.output import as_dict
from loot.errors import LootError
from loot.sdk.result import Result

NOTE_ROOM = 200  # characters kept free in max_chars for the `truncated` and `note` members


@dataclass(frozen=True)
class Bounds:
    max_rows: int
    max_chars: int


def success(content: dict[str, Any]) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=json.dumps(content))],
                                structured_content=content)


def rows(result: Result, bounds: Bounds, *, limited: bool = False) -> types.CallToolResult:
    """A statement's result, bounded. `limited`: the statement asked for at most max_rows + 1 rows, so
    one more than max_rows means "more than max_rows", not a count."""
    content = as_dict(result)
    all_rows = content["rows"]
    kept = _fitting(all_rows[: bounds.max_rows], bounds.max_chars - len(json.dumps({**content, "rows": []})) - NOTE_ROOM)
    if len(kept) < len(all_rows):
        total = f"more than {bounds.max_rows}" if limited and len(all_rows) > bounds.max_rows else str(len(all_rows))
        content.update(rows=kept, truncated=True,
                       note=f"showing the first {len(kept)} of {total} rows: ask for fewer rows or columns "
                            f"(WHERE, LIMIT, aggregates)")
    return success(content)


def _fitting(candidates: list[list[Any]], budget: int) -> list[list[Any]]:
    """The longest prefix of rows whose JSON (with the ", " between them) fits in `budget` characters."""
    used = 0
    for count, row in enumerate(candidates):
        used += len(json.dumps(row)) + 2 * (count > 0)
        if used > budget:
            return candidates[:count]
    return candidates


def failure(code: str, reason: str, message: str, metadata: dict[str, str] | None = None) -> types.CallToolResult:
    error = {"code": code, "reason": reason, "message": message, "metadata": dict(metadata or {})}
    text = f"{code}{f' [{reason}]' if reason else ''}: {message}"
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)],
                                structured_content={"error": error}, is_error=True)


def loot_failure(error: LootError) -> types.CallToolResult:
    return failure(error.code.name, error.reason, error.message, error.metadata)
