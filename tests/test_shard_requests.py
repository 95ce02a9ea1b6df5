"""Execute, Batch, Describe and destroy through a real cluster (docs/api.md, docs/shard.md)."""

from __future__ import annotations

import grpc

from tests.client import Client, rows, statement
from loot.tokens import Key, mint
from loot.v1 import database_pb2 as pb
from tests.conftest import refused
from tests.schemas import open_table

NOTES_TABLE = "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL DEFAULT 'x', score REAL)"
NOTES = open_table(NOTES_TABLE, "notes")


def test_empty_string_and_null_differ(client: Client, key: Key) -> None:
    token = mint(key, "req", "empty", schema=open_table("CREATE TABLE v (x)", "v"))
    client.execute(token, "INSERT INTO v VALUES (''), (NULL), (x''), (-0.0)")
    got = rows(client.execute(token, "SELECT x, typeof(x) FROM v ORDER BY rowid").result)
    assert got == [("", "text"), (None, "null"), (b"", "blob"), (-0.0, "real")]


def test_positional_numbered_and_named_parameters(client: Client, key: Key) -> None:
    token = mint(key, "req", "params")
    assert rows(client.execute(token, "SELECT ?2, ?1, ?2", ["a", "b"]).result) == [("b", "a", "b")]
    assert rows(client.execute(token, "SELECT :x, @x, $y", {":x": 1, "y": 2}).result) == [(1, 1, 2)]
    refused(lambda: client.execute(token, "SELECT :missing", {"other": 1}), grpc.StatusCode.INVALID_ARGUMENT, "BAD_PARAMETERS")
    refused(lambda: client.execute(token, "SELECT ?", [1, 2]), grpc.StatusCode.INVALID_ARGUMENT, "BAD_PARAMETERS")


def test_execute_takes_exactly_one_statement(client: Client, key: Key) -> None:
    token = mint(key, "req", "one", schema=NOTES)
    assert rows(client.execute(token, "SELECT 1; -- done").result) == [(1,)]
    refused(lambda: client.execute(token, "INSERT INTO notes (body) VALUES ('a'); SELECT 1"),
            grpc.StatusCode.INVALID_ARGUMENT, "MULTIPLE_STATEMENTS")
    assert rows(client.execute(token, "SELECT count(*) FROM notes").result) == [(0,)], "the first statement was rolled back"
    refused(lambda: client.execute(token, "  -- nothing\n"), grpc.StatusCode.INVALID_ARGUMENT, "EMPTY_STATEMENT")
    refused(lambda: client.execute(token, "SELEC 1"), grpc.StatusCode.INVALID_ARGUMENT, "SQL_ERROR")


def test_constraint_violation_is_failed_precondition_with_sqlites_message(client: Client, key: Key) -> None:
    token = mint(key, "req", "constraint", schema=NOTES)
    client.execute(token, "INSERT INTO notes (id, body) VALUES (1, 'a')")
    info = refused(lambda: client.batch(token, [("INSERT INTO notes (body) VALUES ('b')", ()),
                                                ("INSERT INTO notes (id, body) VALUES (1, 'c')", ())]),
                   grpc.StatusCode.FAILED_PRECONDITION, "CONSTRAINT_VIOLATION")
    assert info.metadata["statement_index"] == "1"
    refused(lambda: client.execute(token, "INSERT INTO notes (body) VALUES (NULL)"), grpc.StatusCode.FAILED_PRECONDITION)
    assert rows(client.execute(token, "SELECT body FROM notes").result) == [("a",)]


def test_rows_written_and_last_insert_rowid(client: Client, key: Key) -> None:
    token = mint(key, "req", "written", schema=NOTES)
    results = client.batch(token, [("INSERT INTO notes (id, body) VALUES (9223372036854775807, 'max')", ()),
                                   ("UPDATE notes SET score = 1", ()),
                                   ("DELETE FROM notes WHERE id < 0", ())]).results
    assert results[0].last_insert_rowid == 2**63 - 1 and results[0].rows_written == 1
    assert results[1].rows_written == 1 and results[2].rows_written == 0


def test_readonly_token_reads_but_cannot_write(client: Client, key: Key) -> None:
    client.execute(mint(key, "req", "ro", schema=NOTES), "INSERT INTO notes (body) VALUES ('kept')")
    reader = mint(key, "req", "ro", schema=NOTES, readonly=True)
    assert rows(client.execute(reader, "SELECT body FROM notes").result) == [("kept",)]
    for sql in ("INSERT INTO notes (body) VALUES ('no')", "UPDATE notes SET body = 'no'", "DELETE FROM notes"):
        refused(lambda: client.execute(reader, sql), grpc.StatusCode.PERMISSION_DENIED, "READONLY")
    assert rows(client.execute(reader, "SELECT body FROM notes").result) == [("kept",)]


def test_destroy_deletes_after_commit_and_next_touch_is_fresh(cluster, client: Client, key: Key) -> None:
    token = mint(key, "req", "doomed", schema=NOTES)
    client.execute(token, "INSERT INTO notes (body) VALUES ('old')")
    files_before = {p for shard in cluster.names for p in (cluster.data / shard).rglob("*.sqlite*")}
    reply = client.execute(mint(key, "req", "doomed", destroy=True), "SELECT body FROM notes")
    assert reply.destroyed and rows(reply.result) == [("old",)]
    files_after = {p for shard in cluster.names for p in (cluster.data / shard).rglob("*.sqlite*")}
    gone = files_before - files_after
    assert gone and all("doomed" not in str(p) for p in gone)
    refused(lambda: client.execute(mint(key, "req", "doomed"), "SELECT * FROM notes"),
            grpc.StatusCode.INVALID_ARGUMENT, "SQL_ERROR")
    assert rows(client.execute(token, "SELECT count(*) FROM notes").result) == [(0,)]


def test_failed_request_does_not_destroy(client: Client, key: Key) -> None:
    token = mint(key, "req", "survivor", schema=NOTES)
    client.execute(token, "INSERT INTO notes (body) VALUES ('kept')")
    refused(lambda: client.execute(mint(key, "req", "survivor", destroy=True), "SELECT nope"),
            grpc.StatusCode.INVALID_ARGUMENT)
    assert rows(client.execute(token, "SELECT body FROM notes").result) == [("kept",)]


def test_describe_lists_user_objects_filters_and_rules(client: Client, key: Key) -> None:
    schema = (NOTES_TABLE + "; CREATE UNIQUE INDEX notes_body ON notes (body, score);"
              " CREATE VIEW long_notes AS SELECT * FROM notes WHERE length(body) > 10;"
              " CREATE TRIGGER notes_touch AFTER UPDATE ON notes BEGIN SELECT 1; END;"
              " INSERT INTO _filters VALUES ('notes', 'all', 'true');"
              " INSERT INTO _rules VALUES ('notes', 'write', 'anyone', 'true')")
    token = mint(key, "req", "describe", schema=schema)
    described = client.stub.Describe(pb.DescribeRequest(), metadata=(("authorization", f"Bearer {token}"),), timeout=30)
    assert [t.name for t in described.tables] == ["notes"]
    columns = {c.name: c for c in described.tables[0].columns}
    assert (columns["id"].type, columns["id"].pk, columns["id"].HasField("default")) == ("INTEGER", 1, False)
    assert (columns["body"].not_null, columns["body"].default) == (True, "'x'")
    assert [(i.name, i.table, list(i.columns), i.unique) for i in described.indexes] == [
        ("notes_body", "notes", ["body", "score"], True)]
    assert [v.name for v in described.views] == ["long_notes"]
    assert [(t.name, t.table) for t in described.triggers] == [("notes_touch", "notes")]
    assert [(f.table, f.name, f.predicate) for f in described.filters] == [("notes", "all", "true")]
    assert [(r.table, r.operation, r.name) for r in described.rules] == [("notes", "write", "anyone")]
    assert len(described.schema_hash) == 64
    same = client.stub.Describe(pb.DescribeRequest(), metadata=(("authorization", f"Bearer {token}"),), timeout=30)
    assert same.schema_hash == described.schema_hash
    other = mint(key, "req", "describe-other", schema="CREATE TABLE t (a)")
    assert client.stub.Describe(pb.DescribeRequest(), metadata=(("authorization", f"Bearer {other}"),),
                                timeout=30).schema_hash != described.schema_hash


def test_first_touch_reports_the_schema_it_applied(client: Client, key: Key) -> None:
    token = mint(key, "req", "changes", schema=NOTES)
    assert list(client.execute(token, "SELECT 1").schema_changes) != []
    assert list(client.execute(token, "SELECT 1").schema_changes) == []


def test_batch_limit_and_statement_index(client: Client, key: Key) -> None:
    token = mint(key, "req", "many")
    request = pb.BatchRequest(statements=[statement("SELECT 1")] * 1001)
    call = lambda: client.stub.Batch(request, metadata=(("authorization", f"Bearer {token}"),), timeout=30)
    refused(call, grpc.StatusCode.INVALID_ARGUMENT, "TOO_MANY_STATEMENTS")
    assert len(client.batch(token, [("SELECT 1", ())] * 1000).results) == 1000
