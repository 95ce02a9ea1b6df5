"""SDK pieces that need no server: error mapping and tool definitions."""

from __future__ import annotations

import grpc
import pytest

from loot.errors import ConstraintViolation, PermissionDenied, RuleViolation, SchemaRefused, from_rpc_error
from loot.sdk import tools
from loot.sdk.tokens import MintedToken
from loot.tokens import Key, verify
from loot.status import rich_status
from loot.v1 import database_pb2 as pb


class FakeCall(grpc.RpcError):
    """A failed call as grpc presents it, built from a real rich status."""

    def __init__(self, status: grpc.Status):
        self._status = status

    def code(self):
        return self._status.code

    def details(self):
        return self._status.details

    def trailing_metadata(self):
        return self._status.trailing_metadata


@pytest.mark.parametrize("code, reason, metadata, expected", [
    (grpc.StatusCode.PERMISSION_DENIED, "RULE_VIOLATED", {"table": "todos", "rule": "own_rows"}, RuleViolation),
    (grpc.StatusCode.PERMISSION_DENIED, "NOT_AUTHORIZED", {}, PermissionDenied),
    (grpc.StatusCode.FAILED_PRECONDITION, "SCHEMA_REFUSED", {}, SchemaRefused),
    (grpc.StatusCode.FAILED_PRECONDITION, "CONSTRAINT_VIOLATION", {}, ConstraintViolation),
])
def test_errors_map_to_classes(code, reason, metadata, expected) -> None:
    error = from_rpc_error(FakeCall(rich_status(code, reason, "why", metadata)))
    assert type(error) is expected and error.reason == reason and error.message == "why"
    if expected is RuleViolation:
        assert (error.table, error.rule) == ("todos", "own_rows")


DESCRIPTION = pb.DescribeResponse(tables=[pb.Table(name="todos", columns=[
    pb.TableColumn(name="id", type="INTEGER", pk=1),
    pb.TableColumn(name="title", type="TEXT", not_null=True),
    pb.TableColumn(name="done", type="INTEGER", not_null=True, default="0"),
    pb.TableColumn(name="photo", type="BLOB"),
])])


def test_tools_come_from_the_columns() -> None:
    defined = {tool["name"]: tool for tool in tools.from_description(DESCRIPTION)}
    assert set(defined) == {"query", "insert_todos", "update_todos", "delete_todos"}
    insert = defined["insert_todos"]["input_schema"]
    assert insert["required"] == ["title"]
    assert insert["properties"]["id"]["type"] == ["integer", "null"]
    assert "photo" not in insert["properties"]
    assert "todos(id INTEGER" in defined["query"]["description"]


def test_tool_calls_become_parameterised_sql() -> None:
    assert tools.to_statement("insert_todos", {"title": "a"}) == ('INSERT INTO "todos" ("title") VALUES (?)', ["a"])
    assert tools.to_statement("update_todos", {"where": {"id": 1}, "set": {"done": 1}}) == (
        'UPDATE "todos" SET "done" = ? WHERE "id" IS ?', [1, 1])
    assert tools.to_statement("query", {"sql": "SELECT 1;"}) == ("SELECT * FROM (SELECT 1)", [])
    for name, arguments in [("delete_todos", {"where": {}}), ("update_todos", {"where": {"id": 1}, "set": {}}),
                            ("insert_todos", {'x" OR 1': 1}), ("drop_todos", {})]:
        with pytest.raises(ValueError):
            tools.to_statement(name, arguments)


def test_minted_tokens_are_renewed_a_minute_before_expiry() -> None:
    now = [1_800_000_000.0]
    tokens = MintedToken(Key.generate(), "app", "t", ttl=120, clock=lambda: now[0], schema="CREATE TABLE t (x)")
    first = tokens.current()
    now[0] += 59
    assert tokens.current() == first, "still fresh: reused"
    now[0] += 2
    renewed = tokens.current()
    assert renewed != first
    claims = verify(renewed, now=now[0]).payload
    assert claims["iat"] == int(now[0]) and claims["exp"] == int(now[0]) + 120 and claims["schema"] == "CREATE TABLE t (x)"
    with pytest.raises(ValueError):
        MintedToken(Key.generate(), "app", "t", ttl=60)
