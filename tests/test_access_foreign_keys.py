"""Foreign keys between filtered tables, through a real cluster: they work on one's own rows, and on
another's reveal at most that a key exists, never change a row its owner's filters hide (docs/access.md)."""

from __future__ import annotations

import grpc
import pytest

from tests.client import Client, rows
from loot.tokens import Key, mint
from tests.conftest import refused

SCHEMA = """
CREATE TABLE projects (id INTEGER PRIMARY KEY, owner TEXT NOT NULL, name TEXT);
CREATE TABLE tasks (id INTEGER PRIMARY KEY, owner TEXT NOT NULL, project_id INTEGER REFERENCES projects (id), title TEXT);
CREATE TABLE steps (id INTEGER PRIMARY KEY, owner TEXT NOT NULL,
                    task_id INTEGER REFERENCES tasks ON DELETE CASCADE);
CREATE TABLE labels (id INTEGER PRIMARY KEY, owner TEXT NOT NULL,
                     task_id INTEGER REFERENCES tasks (id) ON DELETE SET NULL);
""" + "".join(f"""
INSERT INTO _filters VALUES ('{table}', 'own', 'owner = claim(''user.id'')');
INSERT INTO _rules VALUES ('{table}', 'write', 'own', 'owner = claim(''user.id'')');
""" for table in ("projects", "tasks", "steps", "labels"))


@pytest.fixture
def tokens(key: Key, request: pytest.FixtureRequest) -> dict[str, str]:
    """alice's and bob's tokens for a database of this test's own."""
    return {user: mint(key, "fk", request.node.name, schema=SCHEMA, user={"id": user}) for user in ("alice", "bob")}


def test_own_rows_are_inserted_and_deleted_across_foreign_keys(client: Client, tokens: dict[str, str]) -> None:
    alice = tokens["alice"]
    client.execute(alice, "INSERT INTO projects (id, owner, name) VALUES (1, 'alice', 'garden')")
    client.execute(alice, "INSERT INTO tasks (id, owner, project_id, title) VALUES (10, 'alice', 1, 'dig')")
    client.execute(alice, "INSERT INTO steps (id, owner, task_id) VALUES (100, 'alice', 10)")
    client.execute(alice, "INSERT INTO labels (id, owner, task_id) VALUES (1000, 'alice', 10)")
    assert client.execute(alice, "UPDATE tasks SET project_id = 1, title = 'dig deep' WHERE id = 10").result.rows_written == 1
    # rows_written counts what the cascades changed too: the task, its step, its label.
    assert client.execute(alice, "DELETE FROM tasks WHERE id = 10").result.rows_written == 3
    assert rows(client.execute(alice, "SELECT count(*) FROM steps").result) == [(0,)], "ON DELETE CASCADE"
    assert rows(client.execute(alice, "SELECT id, task_id FROM labels").result) == [(1000, None)], "ON DELETE SET NULL"
    assert client.execute(alice, "DELETE FROM projects WHERE id = 1").result.rows_written == 1
    assert rows(client.execute(alice, "SELECT count(*) FROM projects").result) == [(0,)]


def test_a_missing_parent_is_a_constraint_violation(client: Client, tokens: dict[str, str]) -> None:
    info = refused(lambda: client.execute(tokens["alice"], "INSERT INTO tasks (owner, project_id) VALUES ('alice', 7)"),
                   grpc.StatusCode.FAILED_PRECONDITION, "CONSTRAINT_VIOLATION")
    assert info.metadata["statement_index"] == "0"


def test_another_users_rows_are_neither_shown_nor_changed(client: Client, tokens: dict[str, str]) -> None:
    alice, bob = tokens["alice"], tokens["bob"]
    client.execute(alice, "INSERT INTO projects (id, owner, name) VALUES (1, 'alice', 'garden')")
    client.execute(alice, "INSERT INTO tasks (id, owner, project_id, title) VALUES (10, 'alice', 1, 'dig')")
    client.execute(bob, "INSERT INTO projects (id, owner, name) VALUES (2, 'bob', 'bob''s secret plan')")
    # bob may point his rows at alice's keys (a key's existence is no secret, as with UNIQUE)...
    client.execute(bob, "INSERT INTO tasks (id, owner, project_id, title) VALUES (20, 'bob', 1, 'bob''s secret task')")
    client.execute(bob, "INSERT INTO steps (id, owner, task_id) VALUES (200, 'bob', 10)")
    client.execute(bob, "INSERT INTO labels (id, owner, task_id) VALUES (2000, 'bob', 10)")
    # ...which alice can neither delete from under him nor have cascades change.
    assert client.execute(alice, "DELETE FROM projects WHERE id = 2").result.rows_written == 0
    for attempt in ("DELETE FROM projects WHERE id = 1", "DELETE FROM tasks WHERE id = 10"):
        with pytest.raises(grpc.RpcError) as failed:
            client.execute(alice, attempt)
        assert failed.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "FOREIGN KEY" in failed.value.details() and "secret" not in failed.value.details()
    assert rows(client.execute(bob, "SELECT id FROM projects UNION ALL SELECT id FROM tasks UNION ALL "
                                    "SELECT id FROM steps UNION ALL SELECT task_id FROM labels").result) == [
        (2,), (20,), (200,), (10,)]
    assert rows(client.execute(alice, "SELECT id FROM projects UNION ALL SELECT id FROM tasks").result) == [(1,), (10,)]
