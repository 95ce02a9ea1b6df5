"""The schema claim through a real cluster: router, shards, tokens, SQLite files (docs/schema.md)."""

from __future__ import annotations

import grpc
import pytest

from loot.client import Client, rows
from loot.status import error_info
from loot.tokens import Key, mint
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
