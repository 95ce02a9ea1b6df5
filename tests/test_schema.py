"""The declarative schema engine on real database files (docs/schema.md), below the gRPC layer."""

from __future__ import annotations

from pathlib import Path

import apsw
import grpc
import pytest

from loot.status import Fault
from loot.shard import schema
from loot.shard.schema import history
from tests.schema_invariants import apply_checked, open_database, schema_version, snapshot

NOTES = "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL DEFAULT '', owner TEXT REFERENCES users(id), " \
        "stars INTEGER CHECK (stars >= 0), UNIQUE (owner, body));\nCREATE TABLE users (id TEXT PRIMARY KEY, name TEXT);"


@pytest.fixture
def conn(tmp_path: Path) -> apsw.Connection:
    conn = open_database(tmp_path)
    yield conn
    conn.close()


def insert_rows(conn: apsw.Connection) -> None:
    conn.execute("INSERT INTO users VALUES ('u1', 'Ann'); INSERT INTO notes (body, owner, stars) VALUES ('kept', 'u1', 3)")


def with_rows(conn: apsw.Connection, claim: str = NOTES) -> apsw.Connection:
    schema.apply(conn, claim)
    insert_rows(conn)
    return conn


REFUSED = {
    "column type": NOTES.replace("stars INTEGER", "stars TEXT"),
    "NOT NULL added": NOTES.replace("owner TEXT", "owner TEXT NOT NULL"),
    "default changed": NOTES.replace("DEFAULT ''", "DEFAULT 'x'"),
    "primary key moved": NOTES.replace("id TEXT PRIMARY KEY, name TEXT", "id TEXT, name TEXT PRIMARY KEY"),
    "column CHECK changed": NOTES.replace("stars >= 0", "stars > 0"),
    "table UNIQUE changed": NOTES.replace("UNIQUE (owner, body)", "UNIQUE (owner)"),
    "table CHECK added": NOTES.replace("UNIQUE (owner, body)", "UNIQUE (owner, body), CHECK (id > 0)"),
    "foreign key changed": NOTES.replace("REFERENCES users(id)", "REFERENCES users(name)"),
    "collation changed": NOTES.replace("body TEXT", "body TEXT COLLATE NOCASE"),
    "STRICT": NOTES.replace("name TEXT);", "name TEXT) STRICT;"),
    "WITHOUT ROWID": NOTES.replace("name TEXT);", "name TEXT) WITHOUT ROWID;"),
    "new NOT NULL without default": NOTES.replace("name TEXT", "name TEXT, age INTEGER NOT NULL"),
    "new UNIQUE column": NOTES.replace("name TEXT", "name TEXT, email TEXT UNIQUE"),
    "new PRIMARY KEY column": NOTES.replace("id TEXT PRIMARY KEY, name TEXT", "id TEXT, name TEXT, n INTEGER PRIMARY KEY"),
    "new STORED column": NOTES.replace("name TEXT", "name TEXT, upper_name TEXT AS (upper(name)) STORED"),
    "new non-constant default": NOTES.replace("name TEXT", "name TEXT, seen TEXT DEFAULT CURRENT_TIMESTAMP"),
    "new CHECK column": NOTES.replace("name TEXT", "name TEXT, age INTEGER CHECK (age > 0)"),
    "new REFERENCES column with a default": NOTES.replace("name TEXT", "name TEXT, boss TEXT DEFAULT 'u1' REFERENCES users(id)"),
    "new column in a table constraint": NOTES.replace("name TEXT", "name TEXT, email TEXT, UNIQUE (email)"),
    "new STRICT column with a mistyped default": "CREATE TABLE strict_one (id INTEGER PRIMARY KEY, n INTEGER DEFAULT 'abc') STRICT;",
    "virtual table arguments": "CREATE VIRTUAL TABLE docs USING fts5(title, body, tags);",
}
# Refusals about tables other than NOTES: the live schema and a row for it.
OTHER_BASES = {
    "new STRICT column with a mistyped default": ("CREATE TABLE strict_one (id INTEGER PRIMARY KEY) STRICT;",
                                                  "INSERT INTO strict_one VALUES (1)"),
    "virtual table arguments": ("CREATE VIRTUAL TABLE docs USING fts5(title, body);", "INSERT INTO docs VALUES ('t', 'b')"),
}


@pytest.mark.parametrize("rows", [True, False], ids=["with a row", "empty"])
@pytest.mark.parametrize("change", sorted(REFUSED))
def test_refusals_depend_on_the_schema_only(conn: apsw.Connection, change: str, rows: bool) -> None:
    base, first_row = OTHER_BASES.get(change, (NOTES, None))
    schema.apply(conn, base)
    if rows and first_row:
        conn.execute(first_row)
    elif rows:
        insert_rows(conn)
    claim = REFUSED[change]
    refusal = apply_checked(conn, claim + "\nCREATE TABLE bystander (x);")
    assert isinstance(refusal, Fault), f"{change} was applied"
    assert refusal.code == grpc.StatusCode.FAILED_PRECONDITION and refusal.reason == "SCHEMA_CHANGE_REFUSED"
    assert refusal.metadata["object"].split()[-1].split(".")[0] in ("notes", "users", "docs", "strict_one")
    assert "bystander" not in {name for (name,) in conn.execute("SELECT name FROM sqlite_schema")}


@pytest.mark.parametrize("claim, added", [
    (NOTES.replace("name TEXT", "name TEXT, age INTEGER"), "users.age"),
    (NOTES.replace("name TEXT", "name TEXT, age INTEGER NOT NULL DEFAULT 0"), "users.age"),
    (NOTES.replace("name TEXT", "name TEXT, nick TEXT COLLATE NOCASE DEFAULT 'x'"), "users.nick"),
    (NOTES.replace("name TEXT", "name TEXT, boss TEXT REFERENCES users(id)"), "users.boss"),
    (NOTES.replace("name TEXT", "name TEXT, shout TEXT AS (upper(name))"), "users.shout"),
])
def test_addable_columns_are_added_to_a_table_with_rows(conn: apsw.Connection, claim: str, added: str) -> None:
    with_rows(conn)
    assert apply_checked(conn, claim) == [f"added column {added}"]


def test_cosmetic_differences_are_no_change(conn: apsw.Connection) -> None:
    claim = NOTES + "\nCREATE INDEX by_owner ON notes (owner) WHERE stars > 1;\nCREATE VIEW starred AS SELECT body FROM notes WHERE stars > 0;" \
                    "\nCREATE TRIGGER stamp AFTER INSERT ON notes BEGIN UPDATE notes SET stars = 0 WHERE id = NEW.id AND stars IS NULL; END;"
    with_rows(conn, claim)
    cosmetic = """-- same schema, written differently
      create table "NOTES" ( "id" integer primary key , BODY text not null default '' , Owner text references USERS ( ID ) ,
        [stars] INTEGER check ( STARS >= 0 ) , unique ( owner , body ) ) ;
      CREATE TABLE `users` (id text /* the key */ primary key, name text);
      create index BY_OWNER on Notes(Owner) where STARS>1;
      create view "starred" as select BODY from NOTES where stars>0;
      create trigger STAMP after insert on NOTES begin update notes set stars=0 where id=new.id and stars is null; end;
    """
    assert apply_checked(conn, cosmetic) == []


def test_derived_objects_converge(conn: apsw.Connection) -> None:
    with_rows(conn, NOTES + "\nCREATE INDEX i ON notes (owner);\nCREATE VIEW v AS SELECT body FROM notes;"
                            "\nCREATE TRIGGER on_v INSTEAD OF INSERT ON v BEGIN INSERT INTO notes (body) VALUES (NEW.body); END;"
                            "\nCREATE TRIGGER gone AFTER DELETE ON notes BEGIN SELECT 1; END;"
                            "\nCREATE INDEX dropped ON users (name);")
    changes = apply_checked(conn, NOTES + "\nCREATE UNIQUE INDEX i ON notes (owner, id);\nCREATE VIEW v AS SELECT body, stars FROM notes;"
                                          "\nCREATE TRIGGER on_v INSTEAD OF INSERT ON v BEGIN INSERT INTO notes (body) VALUES (NEW.body); END;"
                                          "\nCREATE VIEW fresh AS SELECT 1;")
    assert sorted(changes) == sorted(["replaced index i", "replaced view v", "replaced trigger on_v", "dropped trigger gone",
                                      "dropped index dropped", "created view fresh"])
    conn.execute("INSERT INTO v (body) VALUES ('through the view')")
    assert conn.execute("SELECT count(*) FROM notes").fetchone() == (2,)


def test_a_rename_is_a_new_object_and_the_old_keeps_its_data(conn: apsw.Connection) -> None:
    with_rows(conn)
    renamed = NOTES.replace("CREATE TABLE users (id TEXT PRIMARY KEY, name TEXT)", "CREATE TABLE people (id TEXT PRIMARY KEY, full_name TEXT)")
    assert apply_checked(conn, renamed) == ["created table people"]
    assert conn.execute("SELECT * FROM users").fetchall() == [("u1", "Ann")]
    assert apply_checked(conn, renamed.replace("full_name", "name2")) == ["added column people.name2"]
    assert [c for (c,) in conn.execute("SELECT name FROM pragma_table_info('people')")] == ["id", "full_name", "name2"]


def test_unique_index_over_duplicates_rolls_everything_back(conn: apsw.Connection) -> None:
    with_rows(conn)
    conn.execute("INSERT INTO users VALUES ('u2', 'Ann')")
    before = snapshot(conn)
    with pytest.raises(Fault) as refused:
        schema.apply(conn, NOTES.replace("name TEXT", "name TEXT, age INTEGER") + "\nCREATE TABLE extra (x);"
                     "\nCREATE UNIQUE INDEX one_name ON users (name);\nINSERT INTO _filters VALUES ('extra', 'all', 'true');")
    assert refused.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert refused.value.reason == "SCHEMA_CONSTRAINT_VIOLATION" and "one_name" in refused.value.message
    assert snapshot(conn) == before


def test_a_seen_schema_never_reverts_a_newer_one(conn: apsw.Connection) -> None:
    old = NOTES + "\nCREATE INDEX i ON notes (owner);"
    new = NOTES + "\nCREATE INDEX j ON notes (stars);\nINSERT INTO _rules VALUES ('notes', 'write', 'anyone', 'true');"
    with_rows(conn, old)
    assert apply_checked(conn, new) == ["dropped index i", "created index j", "added rule notes.anyone"]
    after = snapshot(conn)
    assert schema.apply(conn, old) == [] and snapshot(conn) == after
    assert schema.apply(conn, new) == []


def test_a_privileged_change_is_checked_again(conn: apsw.Connection) -> None:
    claim = NOTES + "\nCREATE INDEX i ON notes (owner);"
    with_rows(conn, claim)
    conn.execute("DROP INDEX i; CREATE TABLE made_by_hand (x); INSERT INTO made_by_hand VALUES (1)")
    assert schema.apply(conn, claim) == ["created index i"]
    assert conn.execute("SELECT x FROM made_by_hand").fetchall() == [(1,)], "tables are never dropped"
    version = schema_version(conn)
    assert schema.apply(conn, claim) == [] and schema_version(conn) == version


def test_history_survives_a_new_connection(tmp_path: Path) -> None:
    old, new = NOTES, NOTES + "\nCREATE INDEX i ON notes (owner);"
    first = open_database(tmp_path)
    schema.apply(first, old)
    schema.apply(first, new)
    first.close()
    second = open_database(tmp_path)
    assert schema.apply(second, old) == []
    assert [n for (n,) in second.execute("SELECT name FROM sqlite_schema WHERE type = 'index' AND name = 'i'")] == ["i"]


def test_filters_and_rules_converge_to_the_claim(conn: apsw.Connection) -> None:
    first = NOTES + "\nINSERT INTO _filters VALUES ('notes', 'mine', 'owner = claim(''sub'')'), ('users', 'all', 'true');"
    assert apply_checked(conn, first)[-2:] == ["added filter notes.mine", "added filter users.all"]
    conn.execute("INSERT INTO _filters VALUES ('notes', 'by_hand', 'false')")
    second = NOTES + "\nINSERT INTO _filters VALUES ('notes', 'mine', 'true');"
    assert apply_checked(conn, second) == ["changed filter notes.mine", "removed filter notes.by_hand", "removed filter users.all"]
    assert conn.execute("SELECT * FROM _filters").fetchall() == [("notes", "mine", "true")]


def test_enforceable_filters_and_rules_are_accepted(conn: apsw.Connection) -> None:
    claim = NOTES + """
INSERT INTO _filters VALUES ('Notes', 'mine', 'owner = claim(''sub'') AND notes.stars >= 0');
INSERT INTO _filters VALUES ('users', 'known', 'id IN (SELECT owner FROM notes)');
INSERT INTO _rules VALUES ('NOTES', 'WRITE', 'mine', 'owner = claim(''sub'')'), ('users', 'Delete', 'never', 'false');"""
    assert apply_checked(conn, claim)[-4:] == ["added filter Notes.mine", "added filter users.known",
                                               "added rule NOTES.mine", "added rule users.never"]


@pytest.mark.parametrize(("rows", "subject", "why"), [
    ("INSERT INTO _filters VALUES ('_rules', 'all', 'true')", "filter _rules.all", "_rules is a system table"),
    ("CREATE VIRTUAL TABLE search USING fts5(body); INSERT INTO _filters VALUES ('search', 'all', 'true')",
     "filter search.all", "search is a virtual table: the request's SQL cannot reach it"),
    ("INSERT INTO _filters VALUES ('notes', 'bytes', X'31')", "filter notes.bytes", "its predicate is not text"),
    ("INSERT INTO _rules VALUES ('notes', 'read', 'r', 'true')", "rule notes.r", "its operation 'read' is none of"),
    ("INSERT INTO _filters VALUES ('notes', 'away', 'owner IN (SELECT id FROM people)')", "filter notes.away",
     "no such table: people"),
])
def test_a_policy_row_that_cannot_be_enforced_is_refused(conn: apsw.Connection, rows: str, subject: str, why: str) -> None:
    schema.apply(conn, NOTES)
    before = snapshot(conn)
    with pytest.raises(Fault) as refused:
        schema.apply(conn, f"{NOTES}\nCREATE TABLE extra (x);\n{rows};\nINSERT INTO _rules VALUES ('nowhere', 'write', 'w', 'true');")
    assert (refused.value.code, refused.value.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "SCHEMA_POLICY_INVALID")
    assert refused.value.metadata["object"] == subject and why in refused.value.metadata["refusal"]
    assert "rule nowhere.w: the schema has no table nowhere" in refused.value.message  # every row is named
    assert snapshot(conn) == before


@pytest.mark.parametrize("statement", [
    "DROP TABLE notes", "ALTER TABLE notes ADD COLUMN x", "DELETE FROM _filters", "UPDATE _rules SET predicate = 'true'",
    "INSERT INTO notes (body) VALUES ('x')", "SELECT 1", "PRAGMA foreign_keys = OFF", "ATTACH 'elsewhere.db' AS other",
    "VACUUM", "BEGIN", "CREATE TEMP TABLE t (x)", "CREATE TABLE _loot_mine (x)", "CREATE INDEX r ON _rules (predicate)",
    "CREATE TRIGGER f AFTER INSERT ON _filters BEGIN SELECT 1; END", "CREATE TABLE broken (", "REINDEX", "ANALYZE",
])
def test_foreign_statements_are_invalid_and_named(conn: apsw.Connection, statement: str) -> None:
    schema.apply(conn, NOTES)
    before = snapshot(conn)
    with pytest.raises(Fault) as refused:
        schema.apply(conn, f"CREATE TABLE fine (x);\n{statement};\nCREATE TABLE also_fine (y);")
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert statement.split()[0] in refused.value.message and refused.value.metadata["schema_statement_index"] == "1"
    assert snapshot(conn) == before


@pytest.mark.parametrize("runaway", [
    "CREATE TABLE big AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT i FROM n",
    "INSERT INTO _filters WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT 't', i, 'true' FROM n",
])
def test_a_runaway_claim_is_stopped(conn: apsw.Connection, runaway: str) -> None:
    with pytest.raises(Fault) as refused:
        schema.apply(conn, runaway)
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT and refused.value.reason == "SCHEMA_TOO_EXPENSIVE"


def test_an_invalid_claim_is_refused_every_time(tmp_path: Path) -> None:
    claim = NOTES + "\nDELETE FROM users;"
    for directory in ("one", "two"):
        conn = open_database(tmp_path / directory)
        with pytest.raises(Fault, match="DELETE FROM users"):
            schema.apply(conn, claim)
        conn.close()


def test_databases_sharing_a_claim_each_get_it(tmp_path: Path) -> None:
    claim = NOTES + "\nCREATE INDEX i ON notes (owner);"
    for directory in ("one", "two", "three"):
        conn = open_database(tmp_path / directory)
        if directory == "two":
            conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL DEFAULT '')")
            assert isinstance(apply_checked(conn, claim), Fault), "a differing live table is refused"
        else:
            assert apply_checked(conn, claim) == ["created table notes", "created table users", "created index i"]
        conn.close()


def test_an_unchanged_schema_runs_one_pragma(conn: apsw.Connection) -> None:
    schema.apply(conn, NOTES)
    ran: list[str] = []
    conn.exec_trace = lambda cursor, sql, bindings: ran.append(sql) or True
    assert schema.apply(conn, NOTES) == []
    assert ran == ["PRAGMA main.schema_version"]


@pytest.mark.parametrize("nothing", ["", "  \n", ";;", "-- a comment", "/* unterminated"])
def test_a_claim_without_statements_is_no_schema(conn: apsw.Connection, nothing: str) -> None:
    schema.apply(conn, NOTES + "\nCREATE INDEX i ON notes (owner);\nINSERT INTO _filters VALUES ('notes', 'f', 'true');")
    before = snapshot(conn)
    assert schema.apply(conn, nothing) == [] and snapshot(conn) == before


@pytest.mark.parametrize("claim", ["CREATE TABLE a (x);\x00DROP TABLE a", "CREATE TABLE b (x)\x00"])
def test_a_nul_character_is_invalid(conn: apsw.Connection, claim: str) -> None:
    with pytest.raises(Fault) as refused:
        schema.apply(conn, claim)
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT and "NUL" in refused.value.message


def test_a_view_gives_way_to_a_table_of_its_name(conn: apsw.Connection) -> None:
    with_rows(conn, NOTES + "\nCREATE VIEW archive AS SELECT body FROM notes;"
                            "\nCREATE TRIGGER archive_in INSTEAD OF INSERT ON archive BEGIN SELECT 1; END;")
    assert apply_checked(conn, NOTES + "\nCREATE TABLE archive (body TEXT);") == [
        "created table archive", "dropped view archive", "dropped trigger archive_in"]


def test_odd_names_and_bare_word_defaults(conn: apsw.Connection) -> None:
    claim = 'CREATE TABLE probe (a);\nCREATE TABLE "we""ird" (a);\nCREATE INDEX "i""x" ON "we""ird" (a);'
    schema.apply(conn, claim)
    conn.execute("INSERT INTO probe VALUES (1)")
    grown = claim.replace("probe (a)", 'probe (a, "c""q" TEXT DEFAULT "word", n INTEGER DEFAULT -1)')
    assert apply_checked(conn, grown) == ['added column probe.c"q', "added column probe.n"]
    assert conn.execute("SELECT * FROM probe").fetchall() == [(1, "word", -1)]


@pytest.mark.parametrize("at", [1, 3, 10, 30, 60, 100, 200, 400])
def test_an_interrupt_anywhere_applies_all_or_nothing(tmp_path: Path, at: int) -> None:
    conn = open_database(tmp_path)
    schema.apply(conn, NOTES)
    before = snapshot(conn)
    calls = iter(range(at))
    conn.set_progress_handler(lambda: next(calls, None) is None and conn.set_progress_handler(None) is None, 1)
    try:
        changes = schema.apply(conn, NOTES + "\nCREATE TABLE more (x);\nCREATE INDEX m ON more (x);")
    except Fault as stopped:  # one interrupt, as the shard's statement-time limit gives
        assert stopped.code == grpc.StatusCode.DEADLINE_EXCEEDED
        assert snapshot(conn) == before
    else:
        assert changes == ["created table more", "created index m"]
    conn.close()


def test_new_columns_come_before_the_objects_that_use_them(conn: apsw.Connection) -> None:
    with_rows(conn, NOTES + "\nCREATE VIEW named AS SELECT id FROM users;")
    grown = NOTES.replace("name TEXT", "name TEXT, email TEXT") + (
        "\nCREATE VIEW named AS SELECT id, email FROM users;\nCREATE INDEX by_email ON users (email);"
        "\nCREATE TRIGGER fill_email AFTER INSERT ON users BEGIN UPDATE users SET email = NEW.id || '@x' WHERE id = NEW.id; END;")
    assert apply_checked(conn, grown) == ["added column users.email", "replaced view named", "created index by_email",
                                          "created trigger fill_email"]
    conn.execute("INSERT INTO users (id) VALUES ('u2')")
    assert conn.execute("SELECT * FROM named ORDER BY id").fetchall() == [("u1", None), ("u2", "u2@x")]


def test_connections_share_one_copy_of_a_claim(tmp_path: Path) -> None:
    conns = [open_database(tmp_path / str(n)) for n in range(3)]
    for conn in conns:
        schema.apply(conn, (NOTES + " ").strip())  # a fresh string object each time, as from a request
    assert len({id(history._known[conn][0][0]) for conn in conns}) == 1
    for conn in conns:
        conn.close()


def test_temp_objects_named_like_tables_do_not_capture_the_schema(conn: apsw.Connection) -> None:
    """Access control shadows each table with a TEMP VIEW of its name (docs/access.md); the schema works on main."""
    with_rows(conn, NOTES + "\nCREATE INDEX i ON notes (owner);")
    conn.execute("CREATE TEMP VIEW notes AS SELECT * FROM main.notes WHERE 0; CREATE TEMP VIEW users AS SELECT * FROM main.users")
    grown = NOTES.replace("name TEXT", "name TEXT, age INTEGER") + (
        "\nCREATE INDEX j ON notes (stars);\nCREATE TRIGGER t AFTER INSERT ON notes BEGIN SELECT 1; END;")
    assert apply_checked(conn, grown) == ["added column users.age", "dropped index i", "created index j", "created trigger t"]
    assert conn.execute("SELECT tbl_name FROM main.sqlite_schema WHERE name IN ('j', 't')").fetchall() == [("notes",), ("notes",)]
    assert conn.execute("SELECT count(*) FROM temp.sqlite_schema").fetchone() == (2,)
