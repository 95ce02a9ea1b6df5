"""Printing results: a readable table by default, JSON on request."""

from __future__ import annotations

import base64
import json
from typing import Any

from loot.sdk.result import Result


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return "x'" + value.hex() + "'"
    return str(value)


def _json_value(value: Any) -> Any:
    return {"base64": base64.b64encode(value).decode()} if isinstance(value, bytes) else value


def table(result: Result) -> str:
    lines = []
    if result.columns:
        cells = [[_cell(value) for value in row] for row in result.rows]
        widths = [max(map(len, column)) for column in zip(result.columns, *cells)]
        lines.append(" | ".join(name.ljust(width) for name, width in zip(result.columns, widths)).rstrip())
        lines.append("-+-".join("-" * width for width in widths))
        lines += [" | ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in cells]
    lines += [f"-- {change}" for change in result.schema_changes]
    summary = f"({len(result.rows)} row{'s' * (len(result.rows) != 1)}"
    summary += f", {result.rows_written} written)" if result.rows_written else ")"
    lines.append(summary + (" -- database destroyed" if result.destroyed else ""))
    return "\n".join(lines)


def as_dict(result: Result) -> dict[str, Any]:
    """The result as JSON values: a BLOB is {"base64": ...}."""
    return {
        "columns": result.columns,
        "rows": [[_json_value(value) for value in row] for row in result.rows],
        "rows_written": result.rows_written,
        "last_insert_rowid": result.last_insert_rowid,
        "schema_changes": result.schema_changes,
        "destroyed": result.destroyed,
    }


def as_json(result: Result) -> str:
    return json.dumps(as_dict(result))
