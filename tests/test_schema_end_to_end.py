"""The schema claim through a real cluster: router, shards, tokens, SQLite files (docs/schema.md)."""

from __future__ import annotations

import grpc
import pytest

from loot import Client as SDK
from tests.client import Client, rows
from loot.status import error_info
from loot.tokens import Key, mint
from tests.conftest import refused
from tests.schemas import open_table

V1 = open_table("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL DEFAULT '')", "notes")
V2 = V1.replace("DEFAULT ''", "DEFAULT '', stars INTEGER") + "\nCREATE INDEX by_stars ON notes (stars);"


def test_changes_are_reported_once_and_old_clients_revert_nothing(client: Client, key: Key) -> None:
    first = client.execute(mint(key, "e2e", "evolve", schema=V1), "INSERT INTO notes (body) VALUES ('kept')")
    assert list(first.schema_changes) == ["created table notes", "added filter notes.all", "added rule notes.all"]
    second = client.execute(mint(key, "e2e", "evolve", schema=V2), "UPDATE notes SET stars = 5")
    assert list(second.schema_changes) == ["added column notes.stars", "created index by_stars"]
    again = client.batch(mint(key, "e2e", "evolve", schema=V2), [("SELECT body, stars FROM notes", ())])
    assert list(again.schema_changes) == [] and rows(again.results[0]) == [("kept", 5)]
    old_client = client.execute(mint(key, "e2e", "evolve", schema=V1), "SELECT stars FROM notes")
    assert list(old_client.schema_changes) == [] and rows(old_client.result) == [(5,)]


def test_a_refused_schema_applies_nothing_and_says_why(client: Client, key: Key) -> None:
    client.execute(mint(key, "e2e", "refused", schema=V1), "INSERT INTO notes (body) VALUES ('kept')")
    changed = V1.replace("body TEXT", "body BLOB") + "\nCREATE TABLE extra (x);"
    with pytest.raises(grpc.RpcError) as refused:
        client.execute(mint(key, "e2e", "refused", schema=changed), "SELECT 1")
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = error_info(refused.value)
    assert info.reason == "SCHEMA_CHANGE_REFUSED" and info.metadata["object"] == "column notes.body"
    assert "type" in refused.value.details()
    listed = client.execute(mint(key, "e2e", "refused"), "SELECT name FROM sqlite_schema WHERE name = 'extra'")
    assert rows(listed.result) == []


def test_a_foreign_statement_is_invalid_argument(client: Client, key: Key) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        client.execute(mint(key, "e2e", "foreign", schema=V1 + "\nDELETE FROM _filters;"), "SELECT 1")
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(refused.value).reason == "SCHEMA_STATEMENT_NOT_ALLOWED"
    assert "DELETE FROM _filters" in refused.value.details()


def test_a_unique_index_over_duplicates_rolls_back_whole(client: Client, key: Key) -> None:
    token = mint(key, "e2e", "duplicates", schema=V1)
    client.execute(token, "INSERT INTO notes (body) VALUES ('same'), ('same')")
    unique = V1 + "\nCREATE TABLE extra (x);\nCREATE UNIQUE INDEX one_body ON notes (body);"
    with pytest.raises(grpc.RpcError) as refused:
        client.execute(mint(key, "e2e", "duplicates", schema=unique), "SELECT 1")
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(refused.value).reason == "SCHEMA_CONSTRAINT_VIOLATION"
    names = client.execute(token, "SELECT name FROM sqlite_schema WHERE name IN ('extra', 'one_body')")
    assert rows(names.result) == []
    assert rows(client.execute(token, "SELECT count(*) FROM notes").result) == [(2,)]


OWNED = ("CREATE TABLE notes (id INTEGER PRIMARY KEY, owner TEXT NOT NULL DEFAULT (claim('sub')), body TEXT);"
         "INSERT INTO _filters VALUES ('notes', 'mine', 'owner = claim(''sub'')');"
         "INSERT INTO _rules VALUES ('notes', 'write', 'mine', 'owner = claim(''sub'')');")


@pytest.mark.parametrize(("old", "new"), [(V1, V2), (OWNED, OWNED.replace("body TEXT", "body TEXT, stars INTEGER"))],
                         ids=["open-table", "filtered-view"])
def test_the_request_that_adds_a_column_names_it(cluster, key: Key, old: str, new: str, request) -> None:
    """Statements cached before the claim's ADD COLUMN must not describe the old columns (SDK `.dicts()`)."""
    tenant = request.node.callspec.id
    with SDK(cluster.address) as sdk:
        before = sdk.database("app", tenant=tenant, key=key, schema=old)
        before.execute("INSERT INTO notes (body) VALUES ('kept')")
        assert "stars" not in before.execute("SELECT * FROM notes").dicts()[0]
        assert "stars" not in before.execute("SELECT * FROM notes WHERE id < 0").columns
        after = sdk.database("app", tenant=tenant, key=key, schema=new)
        first = after.batch(["SELECT * FROM notes", "SELECT * FROM notes WHERE id < 0"])
        assert first[0].dicts()[0]["body"] == "kept" and first[0].dicts()[0]["stars"] is None
        assert first[1].columns[-1] == "stars" and first[1].rows == []


def test_a_column_added_by_privileged_sql_is_read_through_the_filters_at_once(cluster, key: Key) -> None:
    with SDK(cluster.address) as sdk:
        db = sdk.database("app", tenant="adds-before", key=key, schema=OWNED)
        db.execute("INSERT INTO notes (body) VALUES ('kept')")
        assert "extra" not in db.execute("SELECT * FROM notes").columns
        altered = sdk.database("app", tenant="adds-before", key=key, schema=OWNED,
                               before="ALTER TABLE notes ADD COLUMN extra INTEGER DEFAULT 7")
        assert altered.execute("SELECT * FROM notes").dicts() == [{"id": 1, "owner": key.account, "body": "kept", "extra": 7}]


@pytest.mark.parametrize(("row", "subject", "why"), [
    ("INSERT INTO _filters VALUES ('note', 'all', 'true')", "filter note.all", "the schema has no table note"),
    ("INSERT INTO _rules VALUES ('notes', 'wirte', 'mine', 'true')", "rule notes.mine", "its operation 'wirte' is none of"),
    ("INSERT INTO _filters VALUES ('notes', 'typo', 'body = = 1')", "filter notes.typo", 'near "=": syntax error'),
    ("INSERT INTO _rules VALUES ('notes', 'write', 'stars', 'stars > 0')", "rule notes.stars", "no such column: stars"),
    ("INSERT INTO _filters VALUES ('notes', 'two', '1); DELETE FROM notes; SELECT (1')", "filter notes.two",
     "not one SQL expression"),
    ("CREATE VIEW recent AS SELECT * FROM notes; INSERT INTO _filters VALUES ('recent', 'all', 'true')",
     "filter recent.all", "recent is a view"),
], ids=["no-table", "operation", "syntax", "no-column", "two-statements", "view"])
def test_a_policy_row_that_cannot_be_enforced_refuses_the_claim(client: Client, key: Key, row: str, subject: str,
                                                                 why: str, request) -> None:
    tenant = f"policy-{request.node.callspec.id}"
    token = mint(key, "e2e", tenant, schema=V1)
    client.execute(token, "INSERT INTO notes (body) VALUES ('kept')")
    typo = V1 + "\nCREATE TABLE extra (x);\n" + row + ";"
    info = refused(lambda: client.execute(mint(key, "e2e", tenant, schema=typo), "SELECT 1"),
                   grpc.StatusCode.INVALID_ARGUMENT, "SCHEMA_POLICY_INVALID")
    assert info.metadata["object"] == subject and why in info.metadata["refusal"]
    assert rows(client.execute(token, "SELECT name FROM sqlite_schema WHERE name = 'extra'").result) == []
    assert rows(client.execute(token, "SELECT body FROM notes").result) == [("kept",)]
