"""The enforcer re-reads the policy only when it may have changed (loot/shard/access/enforcer.py `refresh`):
every way the filters and rules can change must still take effect when docs/access.md says."""

from __future__ import annotations

import json
from pathlib import Path

import apsw
import pytest

from loot.shard import system_tables
from loot.shard.access import install
from loot.shard.access.enforcer import for_connection
from loot.shard.access.request import run_request
from tests.test_access import Db

OPEN_CLOSED = "INSERT INTO _filters VALUES ('closed', 'all', 'true')"
SHUT_CLOSED = "DELETE FROM _filters WHERE table_name = 'closed'"
NOTES_FOR_ALL = "UPDATE _filters SET predicate = 'true' WHERE table_name = 'notes'"
NOTES_FOR_OWNER = "UPDATE _filters SET predicate = 'owner = claim(''sub'')' WHERE table_name = 'notes'"


@pytest.fixture
def db() -> Db:
    return Db()


def test_the_same_before_changes_the_policy_every_time_it_runs(db: Db) -> None:
    """`before` is cached as prepared statements: its writes must be seen on every run, not only the first."""
    for _ in range(3):
        assert db.run("SELECT * FROM closed", before=OPEN_CLOSED) == [(1,)]
        assert db.run("SELECT * FROM closed", before=SHUT_CLOSED) == []


def test_after_changes_the_policy_for_the_very_next_request(db: Db) -> None:
    for _ in range(2):
        assert db.run("SELECT count(*) FROM notes", after=NOTES_FOR_ALL) == [(2,)]
        assert db.run("SELECT count(*) FROM notes", after=NOTES_FOR_OWNER) == [(4,)]
    assert db.run("SELECT count(*) FROM notes") == [(2,)]


def test_instead_changes_the_rules_for_the_very_next_request(db: Db) -> None:
    assert db.refused("INSERT INTO closed VALUES (2)").reason == "NO_RULE"
    db.run("INSERT INTO _rules VALUES ('closed', 'insert', 'anyone', 'true')", privileged=True)
    db.run("INSERT INTO closed VALUES (2)")
    db.run("DELETE FROM _rules WHERE table_name = 'closed'", privileged=True)
    assert db.refused("INSERT INTO closed VALUES (3)").reason == "NO_RULE"


def test_a_policy_change_rolled_back_with_its_request_is_undone(db: Db) -> None:
    assert db.refused("INSERT INTO closed VALUES (2)", before=OPEN_CLOSED).reason == "NO_RULE"
    assert db.run("SELECT * FROM closed") == []


def test_a_broken_predicate_keeps_failing_until_it_is_fixed(db: Db) -> None:
    """A policy that fails to install rolls its request back, TEMP objects included: it must fail closed again."""
    db.run("SELECT 1", after="INSERT INTO _filters VALUES ('closed', 'broken', 'no_such_column = 1')")
    for _ in range(3):
        assert db.refused("SELECT * FROM notes").reason == "BAD_PREDICATE"
    with for_connection(db.conn).privileged():  # as a schema claim would, outside any request
        db.conn.execute("DELETE FROM main._filters WHERE filter_name = 'broken'")
    assert len(db.run("SELECT * FROM notes")) == 2


def test_a_trigger_of_the_schema_writing_the_filters_is_seen(db: Db) -> None:
    db.run("CREATE TRIGGER opens AFTER INSERT ON audit BEGIN " + OPEN_CLOSED + "; END", privileged=True)
    db.run("SELECT 1", before="INSERT INTO audit VALUES ('open closed')")
    assert db.run("SELECT * FROM closed") == [(1,)]


def test_another_connection_changing_the_policy_is_seen(tmp_path: Path) -> None:
    path = str(tmp_path / "db.sqlite")
    conn = apsw.Connection(path)
    system_tables.create(conn)
    conn.execute("PRAGMA journal_mode = WAL").fetchall()
    conn.execute("CREATE TABLE closed (x); INSERT INTO closed VALUES (1)")

    def read() -> list[tuple]:
        def statements(access):
            with access.statement("SELECT * FROM closed") as sql:
                return conn.execute(sql).fetchall()
        return run_request(conn, claims_json="{}", readonly=True, before="", after="", statements=statements)

    assert read() == []
    apsw.Connection(path).execute(OPEN_CLOSED)
    assert read() == [(1,)]


def test_a_schema_claim_changing_the_filters_takes_effect_at_once() -> None:
    conn = apsw.Connection(":memory:")
    system_tables.create(conn)
    access = for_connection(conn)
    table = "CREATE TABLE notes (id INTEGER PRIMARY KEY, owner TEXT); "

    def count(sub: str) -> int:
        def statements(access):
            with access.statement("SELECT count(*) FROM notes") as sql:
                return conn.execute(sql).fetchone()[0]
        return run_request(conn, claims_json=json.dumps({"sub": sub}), readonly=False, before="", after="",
                           statements=statements)

    access.apply_schema(table + "INSERT INTO _filters VALUES ('notes', 'all', 'true');")
    with access.privileged():
        conn.execute("INSERT INTO main.notes VALUES (1, 'alice'), (2, 'bob')")
    assert count("alice") == 2
    access.apply_schema(table + "INSERT INTO _filters VALUES ('notes', 'own', 'owner = claim(''sub'')');")
    assert count("alice") == 1


def test_claims_change_between_requests_on_one_connection(db: Db) -> None:
    """claim() is flattened once per distinct token and reused: a new token must never see the old one's claims."""
    for sub, expected in [("alice", 2), ("alice", 2), ("bob", 2), ("carol", 0), ("alice", 2)]:
        assert db.run("SELECT count(*) FROM notes", sub=sub) == [(expected,)]
        assert db.run("SELECT claim('sub')", sub=sub) == [(sub,)]


def test_databases_with_the_same_content_share_one_install_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    """What to install is read and compiled once per distinct content; a difference gets its own plan."""
    reads = []
    read = install.policies.read
    monkeypatch.setattr(install.policies, "read", lambda conn: reads.append(conn) or read(conn))
    install._planned.clear()
    first, second = Db(), Db()
    assert first.run("SELECT count(*) FROM notes") == [(2,)]
    assert second.run("SELECT count(*) FROM notes") == [(2,)]
    assert len(reads) == 1, "the second database reused the first one's plan"
    second.run("SELECT 1", after=NOTES_FOR_ALL)
    assert second.run("SELECT count(*) FROM notes") == [(4,)]
    assert first.run("SELECT count(*) FROM notes") == [(2,)]
    assert len(reads) == 2


def test_a_predicate_over_a_temp_table_is_checked_where_that_table_is_missing() -> None:
    """TEMP tables are part of the content a plan is kept for: a connection without one compiles afresh."""
    reading_temp = "INSERT INTO _filters VALUES ('closed', 'listed', 'x IN (SELECT x FROM scratch)')"
    with_table, without = Db(), Db()
    with_table.run("SELECT 1", after=f"CREATE TEMP TABLE scratch (x); INSERT INTO scratch VALUES (1); {reading_temp}")
    assert with_table.run("SELECT * FROM closed") == [(1,)]
    without.run("SELECT 1", after=reading_temp)
    assert without.refused("SELECT * FROM closed").reason == "BAD_PREDICATE"
