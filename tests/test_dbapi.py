"""loot.dbapi (PEP 249) against a real cluster: connect, cursors, commit and rollback over the Transaction
stream, autocommit, and Loot's errors in the PEP's hierarchy."""

from __future__ import annotations

from pathlib import Path

import pytest

import loot.dbapi as dbapi
from loot import Key
from tests.schemas import open_table

pytestmark = pytest.mark.cluster

ITEMS = open_table("CREATE TABLE items (id INTEGER PRIMARY KEY, body TEXT NOT NULL UNIQUE, n REAL)", "items")


@pytest.fixture
def url(cluster, key: Key, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    key.save(tmp_path / "key.json")
    (tmp_path / "schema.sql").write_text(ITEMS)
    return (f"loot://{cluster.address}/dbapi?tenant={request.node.name}"
            f"&key={tmp_path / 'key.json'}&schema={tmp_path / 'schema.sql'}")


def test_module_globals() -> None:
    assert (dbapi.apilevel, dbapi.threadsafety, dbapi.paramstyle) == ("2.0", 1, "qmark")
    assert issubclass(dbapi.IntegrityError, dbapi.DatabaseError) and issubclass(dbapi.DatabaseError, dbapi.Error)


def test_commit_rollback_and_cursor_results(url: str) -> None:
    with dbapi.connect(url) as conn:
        cur = conn.cursor()
        cur.execute("INSERT INTO items (body, n) VALUES (?, ?)", ["one", 1.5])
        assert (cur.rowcount, cur.lastrowid, cur.description) == (1, 1, None)
        cur.executemany("INSERT INTO items (body) VALUES (:body)", [{"body": "two"}, {"body": "three"}])
        assert cur.rowcount == 2
        conn.commit()
        cur.execute("DELETE FROM items")
        conn.rollback()
        cur.execute("SELECT id, body, n FROM items ORDER BY id")
        assert [column[0] for column in cur.description] == ["id", "body", "n"] and cur.rowcount == -1
        assert cur.fetchone() == (1, "one", 1.5)
        assert cur.fetchmany(1) == [(2, "two", None)]
        assert cur.fetchall() == [(3, "three", None)] and cur.fetchone() is None
    with dbapi.connect(url) as again:  # the `with` block committed; the rollback kept every row
        assert again.cursor().execute("SELECT count(*) FROM items").fetchone() == (3,)


def test_close_rolls_back_and_autocommit_applies_each_statement(url: str) -> None:
    conn = dbapi.connect(url)
    conn.cursor().execute("INSERT INTO items (body) VALUES ('dropped')")
    conn.close()
    with pytest.raises(dbapi.InterfaceError):
        conn.cursor()
    auto = dbapi.connect(url, autocommit=True)
    auto.cursor().execute("INSERT INTO items (body) VALUES ('kept')")
    other = dbapi.connect(url, autocommit=True)
    assert other.cursor().execute("SELECT body FROM items").fetchall() == [("kept",)]
    auto.close()
    other.close()


def test_errors_map_to_the_pep_hierarchy(url: str) -> None:
    with dbapi.connect(url, autocommit=True) as conn:
        cur = conn.cursor()
        cur.execute("INSERT INTO items (body) VALUES ('x')")
        with pytest.raises(dbapi.IntegrityError) as duplicate:
            cur.execute("INSERT INTO items (body) VALUES ('x')")
        assert duplicate.value.loot_error.reason == "CONSTRAINT_VIOLATION"
        with pytest.raises(dbapi.ProgrammingError):
            cur.execute("SELEC x")
        with pytest.raises(dbapi.InterfaceError):
            dbapi.connect("http://nowhere/app")


def test_a_statement_error_leaves_the_transaction_open(url: str) -> None:
    with dbapi.connect(url) as conn:
        cur = conn.cursor()
        cur.execute("INSERT INTO items (body) VALUES ('a')")
        with pytest.raises(dbapi.IntegrityError):
            cur.execute("INSERT INTO items (body) VALUES ('a')")
        cur.execute("INSERT INTO items (body) VALUES ('b')")
        conn.commit()
        assert cur.execute("SELECT body FROM items ORDER BY id").fetchall() == [("a",), ("b",)]


def test_connect_with_a_key_object(cluster, key: Key) -> None:
    with dbapi.connect(address=cluster.address, name="dbapi", tenant="by-key", key=key, schema=ITEMS) as conn:
        assert conn.cursor().execute("SELECT count(*) FROM items").fetchone() == (0,)
