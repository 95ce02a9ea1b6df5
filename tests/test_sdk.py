"""The Python SDK against a real cluster: sync and asyncio, typed errors, provisioning."""

from __future__ import annotations

import asyncio

import pytest

from loot import AsyncClient, Client, Key, LootError
from loot.errors import InvalidArgument, Unauthenticated
from loot.tokens.provision import tenant_for
from tests.schemas import open_table

TODOS = open_table("CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0)", "todos")


@pytest.fixture(scope="module")
def sdk(cluster):
    with Client(cluster.address) as client:
        yield client


def test_execute_and_batch(sdk: Client, key: Key) -> None:
    db = sdk.database("app", tenant="sdk-alice", key=key, schema=TODOS)
    first = db.execute("INSERT INTO todos (title) VALUES (?)", ["write docs"])
    assert (first.rows_written, first.last_insert_rowid) == (1, 1)
    results = db.batch([("INSERT INTO todos (title, done) VALUES (:t, 1)", {"t": "ship"}), "SELECT id, title, done FROM todos ORDER BY id"])
    assert results[1].rows == [(1, "write docs", 0), (2, "ship", 1)]
    r = db.execute("SELECT * FROM todos WHERE done = ?", [0])
    assert r.columns == ["id", "title", "done"] and r.decltypes == ["INTEGER", "TEXT", "INTEGER"]
    assert r.dicts() == [{"id": 1, "title": "write docs", "done": 0}]
    assert db.execute("SELECT count(*) FROM todos").scalar() == 2


def test_errors_are_typed(sdk: Client, key: Key) -> None:
    db = sdk.database("app", tenant="sdk-errors", key=key, schema=TODOS)
    with pytest.raises(InvalidArgument) as failed:
        db.execute("SELEC nonsense")
    assert failed.value.reason and "syntax" in failed.value.message
    assert isinstance(failed.value, LootError)
    with pytest.raises(Unauthenticated) as failed:
        sdk.open("not.a.token").execute("SELECT 1")
    assert failed.value.reason == "MALFORMED_TOKEN"


def test_provision_gives_each_subject_its_own_database(sdk: Client, key: Key) -> None:
    alice, again, bob = (key.provision(s, TODOS, name="notes") for s in ("alice@example.com", "alice@example.com", "bob@example.com"))
    assert alice.database == again.database and alice.database != bob.database
    assert "alice" not in alice.database.tenant, "the tenant is a hash, not the subject"
    sdk.open(alice.token).execute("INSERT INTO todos (title) VALUES ('mine')")
    assert sdk.open(again.token).execute("SELECT title FROM todos").rows == [("mine",)]
    assert sdk.open(bob.token).execute("SELECT count(*) FROM todos").scalar() == 0
    with pytest.raises(ValueError):
        tenant_for("x" * 257)


def test_async_client_has_the_same_shape(cluster, key: Key) -> None:
    async def scenario():
        async with AsyncClient(cluster.address) as client:
            db = client.database("app", tenant="sdk-async", key=key, schema=TODOS)
            await db.execute("INSERT INTO todos (title) VALUES (?)", ["async"])
            results = await db.batch(["SELECT title FROM todos"])
            with pytest.raises(InvalidArgument):
                await db.execute("SELECT * FROM missing_table")
            return results[0].rows

    assert asyncio.run(scenario()) == [("async",)]
