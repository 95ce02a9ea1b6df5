"""Filters, rules and privileged claims end to end: tokens -> router -> shard -> SQLite."""

from __future__ import annotations

import grpc
import pytest

from loot import Client as SDK
from loot.cli.describe import text
from tests.client import Client, rows
from loot.status import error_info
from loot.tokens import Key, mint

SHARED = """
CREATE TABLE notes (id INTEGER PRIMARY KEY, owner TEXT NOT NULL, body TEXT);
CREATE TABLE _context (user_id TEXT);
CREATE TABLE log (what TEXT);
CREATE TABLE locked (x);
INSERT INTO _filters VALUES ('notes', 'own', 'owner = (SELECT user_id FROM _context)');
INSERT INTO _rules VALUES ('notes', 'write', 'own', 'owner = (SELECT user_id FROM _context)');
"""

BY_CLAIM = """
CREATE TABLE notes (id INTEGER PRIMARY KEY, owner TEXT NOT NULL, body TEXT);
INSERT INTO _filters VALUES ('notes', 'own', 'owner = claim(''user.id'')');
INSERT INTO _rules VALUES ('notes', 'write', 'own', 'owner = claim(''user.id'')');
"""


def as_user(key: Key, tenant: str, user: str, **claims) -> str:
    """The shared-database pattern: `before` says who is asking, `after` forgets it."""
    return mint(key, "shared", tenant, schema=SHARED,
                before=f"DELETE FROM _context; INSERT INTO _context VALUES ('{user}')",
                after="DELETE FROM _context", **claims)


def privileged_rows(client: Client, key: Key, tenant: str, sql: str) -> list[tuple]:
    return rows(client.execute(mint(key, "shared", tenant, schema=SHARED, instead=sql), "").result)


def refusal(call) -> tuple[grpc.StatusCode, str, dict[str, str]]:
    with pytest.raises(grpc.RpcError) as failed:
        call()
    info = error_info(failed.value)
    return failed.value.code(), info.reason, dict(info.metadata)


def test_context_pattern_with_before_and_after(client: Client, key: Key) -> None:
    alice, bob = as_user(key, "ctx", "alice"), as_user(key, "ctx", "bob")
    client.execute(alice, "INSERT INTO notes (owner, body) VALUES ('alice', 'for alice')")
    client.execute(bob, "INSERT INTO notes (owner, body) VALUES ('bob', 'for bob')")
    assert rows(client.execute(alice, "SELECT owner, body FROM notes").result) == [("alice", "for alice")]
    assert rows(client.execute(bob, "SELECT owner, body FROM main.notes").result) == [("bob", "for bob")]
    code, reason, metadata = refusal(lambda: client.execute(bob, "INSERT INTO notes (owner) VALUES ('alice')"))
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "RULE_VIOLATED")
    assert metadata["table"] == "notes" and metadata["rule"] == "own"
    assert client.execute(bob, "UPDATE notes SET body = 'bob was here'").result.rows_written == 1
    assert privileged_rows(client, key, "ctx", "SELECT owner, body FROM notes ORDER BY id") == [
        ("alice", "for alice"), ("bob", "bob was here")]
    assert privileged_rows(client, key, "ctx", "SELECT count(*) FROM _context") == [(0,)], "after ran"


def test_claim_pattern(client: Client, key: Key) -> None:
    def token(user: str) -> str:
        return mint(key, "by-claim", "t", schema=BY_CLAIM, user={"id": user})

    client.execute(token("alice"), "INSERT INTO notes (owner, body) VALUES (claim('user.id'), 'mine')")
    client.batch(token("bob"), [("INSERT INTO notes (owner, body) VALUES (?, ?)", ["bob", "his"])])
    assert rows(client.execute(token("alice"), "SELECT owner, body FROM notes").result) == [("alice", "mine")]
    assert rows(client.execute(token("carol"), "SELECT count(*) FROM notes").result) == [(0,)]
    assert rows(client.execute(token("bob"), "DELETE FROM notes RETURNING body").result) == [("his",)]
    assert rows(client.execute(token("alice"), "SELECT count(*) FROM notes").result) == [(1,)]


def test_instead_binds_the_request_parameters(client: Client, key: Key) -> None:
    token = mint(key, "shared", "instead", schema=SHARED,
                 instead="INSERT INTO notes (owner, body) VALUES (:owner, :body) RETURNING owner, body")
    result = client.execute(token, "SELECT 'ignored'", {"owner": "zed", "body": "via instead"}).result
    assert rows(result) == [("zed", "via instead")] and result.rows_written == 1
    assert privileged_rows(client, key, "instead", "SELECT owner FROM notes") == [("zed",)]


def test_readonly_refuses_the_requests_writes(client: Client, key: Key) -> None:
    token = as_user(key, "readonly", "alice", readonly=True)
    assert rows(client.execute(token, "SELECT count(*) FROM notes").result) == [(0,)]
    code, reason, _ = refusal(lambda: client.execute(token, "INSERT INTO notes (owner) VALUES ('alice')"))
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "READONLY")
    assert privileged_rows(client, key, "readonly", "SELECT count(*) FROM notes") == [(0,)]


def test_default_deny(client: Client, key: Key) -> None:
    privileged_rows(client, key, "deny", "INSERT INTO locked VALUES ('secret')")
    token = as_user(key, "deny", "alice")
    assert rows(client.execute(token, "SELECT * FROM locked").result) == []
    code, reason, metadata = refusal(lambda: client.execute(token, "INSERT INTO locked VALUES (1)"))
    assert (code, reason, metadata["table"]) == (grpc.StatusCode.PERMISSION_DENIED, "NO_RULE", "locked")
    assert client.execute(token, "DELETE FROM locked").result.rows_written == 0


def test_a_table_without_a_filter_is_said_to_read_as_empty(cluster, client: Client, key: Key) -> None:
    """Not 'read it through its filters': it has none, so its rows are hidden; the error and describe say so."""
    privileged_rows(client, key, "no-filter", "INSERT INTO locked VALUES ('secret')")
    token = as_user(key, "no-filter", "alice")
    assert rows(client.execute(token, "SELECT * FROM locked").result) == []
    with pytest.raises(grpc.RpcError) as failed:
        client.execute(token, "SELECT count(*) FROM locked")
    info = error_info(failed.value)
    assert (failed.value.code(), info.reason, info.metadata["table"]) == (grpc.StatusCode.PERMISSION_DENIED, "NO_FILTER", "locked")
    assert "has no filter" in failed.value.details() and "_filters" in failed.value.details()
    with SDK(cluster.address) as sdk:
        described = sdk.open(token).describe()
        query_tool = sdk.open(token).as_tools()[0]
    assert {t.name: t.no_filter for t in described.tables} == {"notes": False, "_context": True, "log": True, "locked": True}
    assert "table locked (no filter: reads as empty; add one to _filters)" in text(described).splitlines()
    assert "table notes" in text(described).splitlines()
    assert "locked(x ) [no filter: reads as empty]" in query_tool["description"]


def test_a_failing_request_rolls_back_before(client: Client, key: Key) -> None:
    token = mint(key, "shared", "rollback", schema=SHARED, before="INSERT INTO log VALUES ('before ran')")
    code, _, metadata = refusal(lambda: client.batch(token, [
        ("SELECT 1", []), ("INSERT INTO notes (owner) VALUES ('nobody')", [])]))
    assert code == grpc.StatusCode.PERMISSION_DENIED and metadata["statement_index"] == "1"
    assert privileged_rows(client, key, "rollback", "SELECT count(*) FROM log") == [(0,)]


def test_the_request_cannot_write_filters(client: Client, key: Key) -> None:
    token = as_user(key, "system", "alice")
    code, reason, _ = refusal(lambda: client.execute(token, "INSERT INTO _filters VALUES ('locked', 'x', 'true')"))
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "SYSTEM_TABLE")


@pytest.mark.parametrize("attack", [
    "SELECT body FROM main.notes",
    "SELECT body FROM temp.notes",
    "WITH n AS (SELECT * FROM main.notes) SELECT body FROM n",
    "UPDATE notes SET body = 'mallory was here' RETURNING body",
    "DELETE FROM main.notes RETURNING body",
    "INSERT INTO notes (id, owner, body) VALUES (1, 'mallory', 'x') ON CONFLICT (id) DO UPDATE SET body = 'taken' "
    "RETURNING body",
])
def test_bypass_attempts_see_and_touch_nothing(client: Client, key: Key, attack: str) -> None:
    def token(user: str) -> str:
        return mint(key, "by-claim", "attacks", schema=BY_CLAIM, user={"id": user})

    client.execute(token("alice"), "INSERT OR IGNORE INTO notes (id, owner, body) VALUES (1, 'alice', 'secret')")
    assert rows(client.execute(token("mallory"), attack).result) == []
    assert rows(client.execute(token("alice"), "SELECT id, owner, body FROM notes").result) == [(1, "alice", "secret")]
