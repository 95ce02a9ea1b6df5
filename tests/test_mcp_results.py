"""Bounding a tool's rows (loot/cli/mcp_results.py): no process, the fast loop."""

from __future__ import annotations

import json

from loot.cli.mcp_results import Bounds, failure, rows
from loot.sdk.result import Result


def result(values: list) -> Result:
    return Result(columns=["v"], decltypes=[""], rows=[(value,) for value in values])


def test_within_bounds_nothing_is_cut() -> None:
    shown = rows(result([1, 2, b"\x00"]), Bounds(max_rows=3, max_chars=10_000))
    assert shown.structured_content["rows"] == [[1], [2], [{"base64": "AA=="}]]
    assert "truncated" not in shown.structured_content
    assert json.loads(shown.content[0].text) == shown.structured_content


def test_rows_past_the_cap_are_cut_with_a_note() -> None:
    shown = rows(result([1, 2, 3]), Bounds(max_rows=2, max_chars=10_000), limited=True).structured_content
    assert shown["rows"] == [[1], [2]] and shown["truncated"]
    assert shown["note"].startswith("showing the first 2 of more than 2 rows")


def test_the_text_stays_within_max_chars() -> None:
    shown = rows(result(["x" * 300] * 10), Bounds(max_rows=100, max_chars=1000))
    assert len(shown.content[0].text) <= 1000
    assert len(shown.structured_content["rows"]) == 2 and "of 10 rows" in shown.structured_content["note"]


def test_a_row_too_big_for_max_chars_leaves_none() -> None:
    shown = rows(result(["x" * 5000]), Bounds(max_rows=100, max_chars=1000)).structured_content
    assert shown["rows"] == [] and shown["note"].startswith("showing the first 0 of 1 rows")


def test_a_failure_is_a_tool_error_with_code_and_reason() -> None:
    refused = failure("PERMISSION_DENIED", "RULE_VIOLATED", "rule polite failed", {"table": "notes"})
    assert refused.is_error and refused.content[0].text == "PERMISSION_DENIED [RULE_VIOLATED]: rule polite failed"
    assert refused.structured_content["error"]["metadata"] == {"table": "notes"}
