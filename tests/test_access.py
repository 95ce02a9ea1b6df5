"""Filters, rules and privileged SQL on a real SQLite connection (docs/access.md): the statement matrix."""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import apsw
import grpc
import pytest

from loot.status import Fault
from loot.tokens.claim_paths import MAX_DEPTH
from loot.shard import system_tables
from loot.shard.access import claims
from loot.shard.access.enforcer import for_connection
from loot.shard.access.request import run_request
from loot.shard.sql_errors import fault_from_sqlite

SCHEMA = """
CREATE TABLE notes (id INTEGER PRIMARY KEY, owner TEXT NOT NULL, body TEXT);
CREATE INDEX notes_owner ON notes (owner);
CREATE TABLE tags (note_id INTEGER, tag TEXT);
CREATE TABLE members (user_id TEXT PRIMARY KEY, boss TEXT);
CREATE TABLE _context (user_id TEXT);
CREATE TABLE audit (what TEXT);
CREATE TABLE closed (x);
CREATE TABLE inbox (x);
CREATE VIEW note_bodies AS SELECT id, body FROM notes;
CREATE TRIGGER notes_audit AFTER INSERT ON notes BEGIN INSERT INTO audit VALUES ('added ' || NEW.id); END;
INSERT INTO _filters VALUES ('notes', 'own', 'owner = claim(''sub'')');
INSERT INTO _rules VALUES ('notes', 'write', 'own', 'owner = claim(''sub'')');
INSERT INTO _rules VALUES ('notes', 'update', 'short', 'length(body) < 20');
INSERT INTO _filters VALUES ('tags', 'of visible notes', 'note_id IN (SELECT id FROM notes WHERE owner = claim(''sub''))');
INSERT INTO _rules VALUES ('tags', 'insert', 'on own notes', 'note_id IN (SELECT id FROM notes WHERE owner = claim(''sub''))');
INSERT INTO _filters VALUES ('members', 'all', 'true');
INSERT INTO _filters VALUES ('audit', 'all', 'true');
INSERT INTO _rules VALUES ('audit', 'insert', 'all', 'true');
INSERT INTO notes VALUES (1, 'alice', 'a1'), (2, 'bob', 'b1'), (3, 'alice', 'a2'), (4, 'bob', 'b2');
INSERT INTO tags VALUES (1, 'red'), (2, 'blue'), (3, 'green');
INSERT INTO members VALUES ('alice', NULL), ('bob', 'alice');
INSERT INTO closed VALUES (1);
INSERT INTO _rules VALUES ('inbox', 'write', 'small', 'x < 10');
INSERT INTO inbox VALUES (1);
"""


class Db:
    """A database with SCHEMA, and requests run on it the way the engine runs them."""

    def __init__(self) -> None:
        self.conn = apsw.Connection(":memory:")
        system_tables.create(self.conn)
        self.conn.execute(SCHEMA)

    def run(self, sql: str, params: Any = (), *, sub: str = "alice", readonly: bool = False,
            before: str = "", after: str = "", privileged: bool = False) -> list[tuple]:
        def statements(access):
            try:
                with access.privileged() if privileged else nullcontext(), access.statement(sql) as rewritten:
                    return self.conn.execute(rewritten, params).fetchall()
            except apsw.Error as error:
                raise access.fault(error) or fault_from_sqlite(error)

        return run_request(self.conn, claims_json=json.dumps({"sub": sub, "user": {"id": sub}}),
                           readonly=readonly, before=before, after=after, statements=statements)

    def refused(self, sql: str, **kwargs: Any) -> Fault:
        with pytest.raises(Fault) as refused:
            self.run(sql, **kwargs)
        return refused.value

    def everything(self, table: str) -> list[tuple]:
        with for_connection(self.conn).privileged():
            return self.conn.execute(f"SELECT * FROM main.{table} ORDER BY 1").fetchall()


@pytest.fixture
def db() -> Db:
    return Db()


ALICE_NOTES = [(1, "alice", "a1"), (3, "alice", "a2")]


READS = [
    ("SELECT * FROM notes ORDER BY id", ALICE_NOTES),
    ("SELECT * FROM main.notes ORDER BY id", ALICE_NOTES),
    ("SELECT * FROM temp.notes ORDER BY id", ALICE_NOTES),
    ('SELECT * FROM "MAIN" . [notes] ORDER BY id', ALICE_NOTES),
    ("SELECT * FROM 'main'/* hidden */.`notes` ORDER BY id", ALICE_NOTES),
    ("SELECT count(*) FROM notes", [(2,)]),
    ("SELECT n.id, t.tag FROM notes n JOIN tags t ON t.note_id = n.id ORDER BY n.id", [(1, "red"), (3, "green")]),
    ("SELECT m.user_id, n.id FROM members m LEFT JOIN notes n ON n.owner = m.user_id ORDER BY 1, 2",
     [("alice", 1), ("alice", 3), ("bob", None)]),
    ("SELECT id FROM notes WHERE id IN (SELECT note_id FROM tags) ORDER BY id", [(1,), (3,)]),
    ("SELECT (SELECT group_concat(body) FROM main.notes)", [("a1,a2",)]),
    ("WITH mine AS (SELECT id FROM notes) SELECT count(*) FROM mine", [(2,)]),
    ("WITH RECURSIVE n(i) AS (SELECT min(id) FROM notes UNION ALL SELECT (SELECT min(id) FROM notes WHERE id > i) "
     "FROM n WHERE i IS NOT NULL) SELECT i FROM n WHERE i IS NOT NULL", [(1,), (3,)]),
    ("SELECT id, row_number() OVER (ORDER BY id DESC) FROM notes ORDER BY id", [(1, 2), (3, 1)]),
    ("SELECT id FROM notes UNION SELECT note_id FROM tags ORDER BY 1", [(1,), (3,)]),
    ("SELECT * FROM note_bodies ORDER BY id", [(1, "a1"), (3, "a2")]),
    ("SELECT * FROM main.note_bodies ORDER BY id", [(1, "a1"), (3, "a2")]),
    ("SELECT * FROM closed", []),
    ("SELECT * FROM _context", []),
]


@pytest.mark.parametrize("sql, expected", READS)
def test_reads_see_only_visible_rows(db: Db, sql: str, expected: list[tuple]) -> None:
    assert db.run(sql) == expected


def visible_copy(db: Db, user: str) -> apsw.Connection:
    """A plain database holding exactly what `user` may see: the reference for every read."""
    with for_connection(db.conn).privileged():
        schema = [sql for sql, in db.conn.execute(
            "SELECT sql FROM main.sqlite_schema WHERE type IN ('table', 'view') AND name NOT LIKE '\\_%' ESCAPE '\\'")]
        notes = db.conn.execute("SELECT * FROM main.notes WHERE owner = ?", (user,)).fetchall()
        tags = db.conn.execute("SELECT * FROM main.tags WHERE note_id IN (SELECT id FROM main.notes WHERE owner = ?)",
                               (user,)).fetchall()
        members, audit = db.everything("members"), db.everything("audit")
    copy = apsw.Connection(":memory:")
    for sql in [*schema, "CREATE TABLE _context (user_id TEXT)"]:
        copy.execute(sql)
    for table, rows in (("notes", notes), ("tags", tags), ("members", members), ("audit", audit)):
        if rows:
            copy.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(rows[0]))})", rows)
    return copy


@pytest.mark.parametrize("user", ["alice", "bob", "mallory"])
def test_every_read_equals_the_same_read_of_only_the_visible_rows(db: Db, user: str) -> None:
    reference = visible_copy(db, user)
    for sql, _ in READS:
        plain = sql.replace("main.", "").replace("temp.", "").replace("'main'/* hidden */.", "").replace('"MAIN" . ', "")
        assert db.run(sql, sub=user) == reference.execute(plain).fetchall(), sql


def test_claim_is_readable_from_any_sql(db: Db) -> None:
    assert db.run("SELECT claim('sub'), claim('user.id'), claim('user'), claim('nope')") == [
        ("alice", "alice", '{"id":"alice"}', None)]


def test_claim_paths_and_values() -> None:
    nested: dict = {"leaf": "deep"}
    for _ in range(MAX_DEPTH + 5):
        nested = {"n": nested}
    paths = claims.flatten(json.dumps({"a": {"b": [1, {"c": True}]}, "big": 2**70, "t": True, "deep": nested}))
    assert (paths["a.b"], paths["big"], paths["t"], paths.get("a.b.0")) == ('[1,{"c":true}]', str(2**70), 1, None)
    assert paths["deep.n.n"] is not None and not any(path.endswith("leaf") for path in paths)


def test_filter_is_per_claim(db: Db) -> None:
    assert db.run("SELECT id FROM notes ORDER BY id", sub="bob") == [(2,), (4,)]
    assert db.run("SELECT id FROM notes", sub="mallory") == []


def test_insert_values_checks_rules(db: Db) -> None:
    assert db.run("INSERT INTO notes VALUES (5, 'alice', 'new') RETURNING id, body") == [(5, "new")]
    refused = db.refused("INSERT INTO notes VALUES (6, 'bob', 'forged')")
    assert (refused.code, refused.reason) == (grpc.StatusCode.PERMISSION_DENIED, "RULE_VIOLATED")
    assert refused.metadata == {"table": "notes", "rule": "own", "operation": "insert"}
    assert "own" in refused.message and "notes" in refused.message
    assert (6, "bob", "forged") not in db.everything("notes")


def test_insert_select_reads_filtered_and_checks_rules(db: Db) -> None:
    assert db.run("INSERT INTO main.notes (owner, body) SELECT owner, body || '+' FROM notes RETURNING body") == [
        ("a1+",), ("a2+",)]
    assert db.refused("INSERT INTO notes (owner, body) SELECT 'bob', body FROM notes").metadata["rule"] == "own"


def test_upsert_over_a_visible_row_updates_it(db: Db) -> None:
    sql = "INSERT INTO notes VALUES (1, 'alice', 'x') ON CONFLICT (id) DO UPDATE SET body = 'upserted' RETURNING *"
    assert db.run(sql) == [(1, "alice", "upserted")]


def test_upsert_update_must_obey_the_rules(db: Db) -> None:
    sql = "INSERT INTO notes VALUES (1, 'alice', 'x') ON CONFLICT (id) DO UPDATE SET owner = 'bob'"
    assert db.refused(sql).metadata == {"table": "notes", "rule": "own", "operation": "update"}


def test_upsert_over_an_invisible_row_leaves_it_alone(db: Db) -> None:
    sql = "INSERT INTO notes VALUES (2, 'alice', 'x') ON CONFLICT (id) DO UPDATE SET owner = 'alice' RETURNING *"
    assert db.run(sql) == []
    assert (2, "bob", "b1") in db.everything("notes")


def test_replace_over_an_invisible_row_fails_and_keeps_it(db: Db) -> None:
    refused = db.refused("REPLACE INTO notes VALUES (2, 'alice', 'stolen')")
    assert refused.code == grpc.StatusCode.FAILED_PRECONDITION
    assert (2, "bob", "b1") in db.everything("notes")


def test_replace_over_a_visible_row_replaces_it(db: Db) -> None:
    assert db.run("INSERT OR REPLACE INTO notes VALUES (1, 'alice', 'replaced') RETURNING body") == [("replaced",)]


def test_update_touches_only_visible_rows(db: Db) -> None:
    assert db.run("UPDATE notes SET body = body || '!' RETURNING id") == [(1,), (3,)]
    assert db.everything("notes") == [(1, "alice", "a1!"), (2, "bob", "b1"), (3, "alice", "a2!"), (4, "bob", "b2")]


def test_update_from_reads_filtered_and_checks_rules(db: Db) -> None:
    sql = "UPDATE notes SET body = t.tag FROM main.tags AS t WHERE t.note_id = notes.id RETURNING notes.id, body"
    assert sorted(db.run(sql)) == [(1, "red"), (3, "green")]
    assert db.refused("UPDATE notes SET owner = 'bob'").metadata == {
        "table": "notes", "rule": "own", "operation": "update"}
    assert db.refused("UPDATE notes SET body = 'far too long for the short rule'").metadata["rule"] == "short"


def test_update_cannot_aggregate_invisible_rows_into_visible_ones(db: Db) -> None:
    db.run("UPDATE main.notes SET body = (SELECT group_concat(body) FROM main.notes) WHERE id = 1")
    assert db.run("SELECT body FROM notes WHERE id = 1") == [("a1,a2",)]


def test_delete_removes_only_visible_rows(db: Db) -> None:
    assert db.run("DELETE FROM main.notes RETURNING id") == [(1,), (3,)]
    assert [row[0] for row in db.everything("notes")] == [2, 4]


def test_delete_without_a_rule_is_refused(db: Db) -> None:
    refused = db.refused("DELETE FROM tags")
    assert (refused.reason, refused.metadata) == ("NO_RULE", {"table": "tags", "rule": "", "operation": "delete"})


def test_default_deny_on_a_table_without_filters_or_rules(db: Db) -> None:
    assert db.run("SELECT * FROM closed") == []
    assert db.refused("INSERT INTO closed VALUES (2)").reason == "NO_RULE"
    assert db.run("UPDATE closed SET x = 3 RETURNING x") == []
    assert db.run("DELETE FROM closed RETURNING x") == []
    assert db.everything("closed") == [(1,)]


def test_rules_without_filters_let_rows_in_but_hide_every_row(db: Db) -> None:
    db.run("INSERT INTO inbox VALUES (2)")
    assert db.refused("INSERT INTO inbox VALUES (50)").reason == "RULE_VIOLATED"
    assert db.run("SELECT * FROM inbox") == []
    assert db.run("UPDATE inbox SET x = 3 RETURNING x") == []
    assert db.run("DELETE FROM inbox RETURNING x") == []
    assert db.refused("REPLACE INTO inbox (rowid, x) VALUES (1, 4)").code == grpc.StatusCode.FAILED_PRECONDITION
    assert db.everything("inbox") == [(1,), (2,)]


def test_a_view_from_the_schema_reads_through_the_filters(db: Db) -> None:
    assert db.run("SELECT count(*) FROM note_bodies", sub="mallory") == [(0,)]
    assert db.run("SELECT count(*) FROM main.note_bodies", sub="mallory") == [(0,)]


def test_a_trigger_from_the_schema_obeys_the_rules(db: Db) -> None:
    db.run("INSERT INTO notes VALUES (7, 'alice', 'x')")
    assert db.run("SELECT what FROM audit")[-1] == ("added 7",)
    db.run("DELETE FROM _rules WHERE table_name = 'audit'", privileged=True)
    assert db.refused("INSERT INTO notes VALUES (8, 'alice', 'x')").metadata["table"] == "audit"


def test_predicates_read_unfiltered_tables(db: Db) -> None:
    before = "DELETE FROM _context; INSERT INTO _context VALUES ('bob')"
    db.run("INSERT INTO _filters VALUES ('audit', 'ctx', 'what = (SELECT user_id FROM _context)')", privileged=True)
    db.run("INSERT INTO audit VALUES ('bob'), ('carol')", privileged=True)
    assert db.run("SELECT what FROM audit", before=before) == [("bob",)]


@pytest.mark.parametrize("sql, reason", [
    ("INSERT INTO _filters VALUES ('closed', 'open', 'true')", "SYSTEM_TABLE"),
    ("DELETE FROM _rules", "SYSTEM_TABLE"),
    ("DROP VIEW temp.notes", "SCHEMA_CHANGE"),
    ("DROP TRIGGER temp._loot_insert_notes", "SCHEMA_CHANGE"),
    ("CREATE TEMP VIEW x AS SELECT * FROM main.notes", "SCHEMA_CHANGE"),
    ("PRAGMA recursive_triggers = OFF", "PRAGMA"),
    ("ROLLBACK", "TRANSACTION_CONTROL"),
    ("UPDATE sqlite_master SET sql = ''", "SQL_ERROR"),  # SQLite's own refusal
    ("SELECT sum(ncell) FROM dbstat WHERE name = 'notes'", "PAGE_READER"),
])
def test_the_mechanism_cannot_be_switched_off(db: Db, sql: str, reason: str) -> None:
    assert db.refused(sql).reason == reason
    assert db.run("SELECT count(*) FROM notes") == [(2,)]


def test_privileged_statements_are_authorized_again_when_reused(db: Db) -> None:
    assert len(db.run("SELECT * FROM main.notes", privileged=True)) == 4
    assert len(db.run("SELECT * FROM main.notes")) == 2
    db.run("INSERT INTO _rules VALUES ('closed', 'write', 'x', 'true')", privileged=True)
    assert db.refused("INSERT INTO _rules VALUES ('closed', 'write', 'x', 'true')").reason == "SYSTEM_TABLE"


def test_before_and_after_run_privileged_in_the_same_transaction(db: Db) -> None:
    assert db.run("SELECT count(*) FROM notes", before="INSERT INTO closed VALUES (10)",
                  after="INSERT INTO notes VALUES (20, 'bob', 'by after')") == [(2,)]
    assert db.everything("closed") == [(1,), (10,)]
    assert (20, "bob", "by after") in db.everything("notes")


def test_a_failing_request_rolls_back_before(db: Db) -> None:
    db.refused("INSERT INTO notes VALUES (30, 'bob', 'x')", before="INSERT INTO closed VALUES (11)")
    assert db.everything("closed") == [(1,)]
    with pytest.raises(Fault):
        db.run("INSERT INTO notes VALUES (31, 'alice', 'x')", after="INSERT INTO nowhere VALUES (1)")
    assert 31 not in [row[0] for row in db.everything("notes")]


@pytest.mark.parametrize("before, reason", [
    ("ATTACH ':memory:' AS other", "FILE_ACCESS"),
    ("COMMIT", "TRANSACTION_CONTROL"),
    ("PRAGMA journal_mode = DELETE", "PRAGMA"),
    ("SELECT load_extension('x')", "LOAD_EXTENSION"),
])
def test_privileged_sql_still_cannot_reach_files_or_end_the_transaction(db: Db, before: str, reason: str) -> None:
    refused = db.refused("INSERT INTO closed VALUES (13)", before=before)
    assert (refused.code, refused.reason, refused.metadata["claim"]) == (grpc.StatusCode.PERMISSION_DENIED, reason,
                                                                          "before")
    assert db.everything("closed") == [(1,)]


def test_before_can_change_the_policy_for_the_request(db: Db) -> None:
    assert db.run("SELECT * FROM closed", before="INSERT INTO _filters VALUES ('closed', 'all', 'true')") == [(1,)]


def test_readonly_refuses_writes_but_not_privileged_sql(db: Db) -> None:
    refused = db.refused("UPDATE notes SET body = 'x'", readonly=True)
    assert (refused.code, refused.reason) == (grpc.StatusCode.PERMISSION_DENIED, "READONLY")
    assert db.run("SELECT count(*) FROM notes", readonly=True, before="INSERT INTO closed VALUES (12)") == [(2,)]
    assert db.everything("closed") == [(1,), (12,)]
    assert db.run("UPDATE notes SET body = 'x' WHERE id = 1 RETURNING id") == [(1,)]


def test_writes_under_every_spelling_of_the_table_are_checked(db: Db) -> None:
    for name in ("notes", "main.notes", "temp.notes", '"main"."notes"'):
        assert db.refused(f"INSERT INTO {name} VALUES (NULL, 'bob', 'x')").reason == "RULE_VIOLATED"
        assert db.run(f"UPDATE {name} SET body = 'y' WHERE id = 2 RETURNING id") == []


def test_rowid_is_readable_on_open_tables(db: Db) -> None:
    assert db.run("SELECT rowid, user_id FROM members ORDER BY rowid") == [(1, "alice"), (2, "bob")]


def test_virtual_tables_are_reachable_from_privileged_sql_only(db: Db) -> None:
    db.run("CREATE VIRTUAL TABLE docs USING fts5(body); INSERT INTO docs VALUES ('secret words')", privileged=True)
    for sql in ("SELECT * FROM docs WHERE docs MATCH 'secret'", "SELECT * FROM docs_content",
                "INSERT INTO docs VALUES ('x')", "DELETE FROM docs"):
        refused = db.refused(sql)
        assert (refused.code, refused.reason) == (grpc.StatusCode.PERMISSION_DENIED, "VIRTUAL_TABLE")
    assert db.run("SELECT body FROM docs WHERE docs MATCH 'secret'", privileged=True) == [("secret words",)]


def test_the_example_in_the_docs_runs() -> None:
    docs = (Path(__file__).parent.parent / "docs" / "access.md").read_text()
    example = docs.split("```sql\n")[1].split("```")[0]
    conn = apsw.Connection(":memory:")
    system_tables.create(conn)
    conn.execute(example)

    def insert_and_count(access):
        with access.statement("INSERT INTO notes (owner, body) VALUES (claim('user.id'), 'x')") as sql:
            conn.execute(sql)
        with access.statement("SELECT count(*) FROM notes") as sql:
            return conn.execute(sql).fetchall()

    claims = json.dumps({"user": {"id": "alice"}})
    assert run_request(conn, claims_json=claims, readonly=False, before="", after="",
                       statements=insert_and_count) == [(1,)]


@pytest.mark.parametrize("statement", [
    "INSERT INTO _filters VALUES ('closed', 'broken', 'no_such_column = 1')",
    "INSERT INTO _rules VALUES ('closed', 'insert', 'broken', 'x = (SELECT FROM')",
])
def test_a_broken_predicate_fails_closed_and_names_itself(db: Db, statement: str) -> None:
    db.run(statement, privileged=True)
    refused = db.refused("SELECT * FROM notes")
    assert (refused.code, refused.reason, refused.metadata) == (
        grpc.StatusCode.FAILED_PRECONDITION, "BAD_PREDICATE", {"table": "closed", "predicate": "broken"})


def test_privileged_ddl_names_the_real_objects(db: Db) -> None:
    db.run("SELECT 1")  # the TEMP views are in place
    db.run("CREATE INDEX notes_body ON notes (body); DROP VIEW note_bodies", privileged=True)
    db.run("ALTER TABLE notes ADD COLUMN extra TEXT", privileged=True,
           before="CREATE TRIGGER t AFTER DELETE ON notes BEGIN SELECT 1; END")
    with for_connection(db.conn).privileged():
        names = {name for name, in db.conn.execute("SELECT name FROM main.sqlite_schema")}
    assert {"notes_body", "t"} <= names and "note_bodies" not in names
    assert db.run("SELECT * FROM notes WHERE id = 1") == [(1, "alice", "a1", None)]


def test_a_new_schema_claim_is_applied_without_the_temp_views() -> None:
    conn = apsw.Connection(":memory:")
    system_tables.create(conn)
    access = for_connection(conn)
    tables = ("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); "
              "INSERT INTO _filters VALUES ('notes', 'numbered', 'id > 0');")
    access.apply_schema(tables + " CREATE VIEW note_bodies AS SELECT body FROM notes;")
    run_request(conn, claims_json="{}", readonly=False, before="", after="", statements=lambda _: None)
    temp_notes = "SELECT count(*) FROM temp.sqlite_schema WHERE name = 'notes'"
    claim = tables + " CREATE INDEX notes_body ON notes (body);"  # unqualified: must not meet the TEMP view
    assert access.apply_schema(claim) != []
    assert conn.execute(temp_notes).fetchone() == (0,)
    run_request(conn, claims_json="{}", readonly=False, before="", after="", statements=lambda _: None)
    assert access.apply_schema(claim) == []  # already applied here: the TEMP views stay
    assert conn.execute(temp_notes).fetchone() == (1,)
    with access.privileged():
        names = {name for name, in conn.execute("SELECT name FROM main.sqlite_schema")}
    assert "notes_body" in names and "note_bodies" not in names


@pytest.mark.parametrize("sql", [
    "UPDATE notes SET body = body WHERE CASE WHEN owner = 'bob' THEN abs(-9223372036854775807 - 1) ELSE 1 END",
    "DELETE FROM notes WHERE CASE WHEN owner = 'bob' THEN abs(-9223372036854775807 - 1) ELSE 0 END",
    "SELECT id FROM notes WHERE CASE WHEN owner = 'bob' THEN abs(-9223372036854775807 - 1) ELSE 1 END",
])
def test_hidden_rows_cannot_raise_errors(db: Db, sql: str) -> None:
    """Filters that read only the row run before the statement's own WHERE: no error oracle on hidden rows."""
    db.run(sql)


def test_leaky_statements_may_not_name_the_fast_views(db: Db) -> None:
    assert db.run("SELECT id FROM _loot_fast_notes ORDER BY id") == [(1,), (3,)]  # leakproof: harmless
    refused = db.refused("SELECT id FROM _loot_fast_notes WHERE abs(id) > 0")
    assert (refused.reason, refused.metadata["table"]) == ("FILTERED_TABLE", "notes")


@pytest.mark.parametrize("sql", [
    "SELECT id, body FROM notes WHERE id > 0 ORDER BY id",  # leakproof: the fast view
    "SELECT id, body FROM notes WHERE abs(id) > 0 ORDER BY id",  # leaky: the barrier view
    "SELECT id, body FROM notes WHERE id IN (SELECT note_id FROM tags) ORDER BY id",
    "WITH mine AS (SELECT * FROM notes) SELECT id, body FROM mine ORDER BY id",
])
def test_barrier_and_fast_views_read_the_same_rows(db: Db, sql: str) -> None:
    assert db.run(sql) == [(1, "a1"), (3, "a2")]
