"""Rewriting names in SQL text for access control: only names move, never structure."""

from __future__ import annotations

import pytest

from shard.access.guard import filter_rows_first
from shard.access.rewrite import qualify_tables, retarget
from shard.sql_text import split_statements

FILTERED = frozenset({"t", "u"})


@pytest.mark.parametrize("sql, expected, target", [
    ("SELECT * FROM t", "SELECT * FROM t", None),
    ("SELECT * FROM main.t", 'SELECT * FROM temp."t"', None),
    ("SELECT 'main.t', x FROM t -- main.t\n", "SELECT 'main.t', x FROM t -- main.t\n", None),
    ("SELECT main.t.x FROM t", "SELECT main.t.x FROM t", None),
    ("SELECT * FROM main.other", "SELECT * FROM main.other", None),
    ("INSERT INTO t VALUES (1)", 'INSERT INTO main."t" VALUES (1)', "t"),
    ("insert or replace into TEMP . \"T\" select * from main.u", 'insert or replace into main."t" select * from temp."u"', "t"),
    ("WITH x(a) AS (SELECT 1 FROM main.t) UPDATE t SET a = 1", 'WITH x(a) AS (SELECT 1 FROM temp."t") UPDATE main."t" SET a = 1', "t"),
    ("DELETE FROM [t] WHERE id IN (SELECT id FROM main.t)", 'DELETE FROM main."t" WHERE id IN (SELECT id FROM temp."t")', "t"),
    ("UPDATE OR IGNORE other SET a = 1", "UPDATE OR IGNORE other SET a = 1", None),
])
def test_restricted_retarget(sql: str, expected: str, target: str | None) -> None:
    assert retarget(sql, FILTERED, restricted=True) == (expected, target)


def test_privileged_sql_reads_main() -> None:
    assert retarget("SELECT * FROM t, u JOIN t AS t2 ON 1 WHERE x IN t", FILTERED, restricted=False)[0] == (
        'SELECT * FROM main."t", main."u" JOIN main."t" AS t2 ON 1 WHERE x IN main."t"')
    assert retarget("DELETE FROM t", FILTERED, restricted=False) == ('DELETE FROM main."t"', "t")


def test_predicates_are_qualified_but_columns_and_functions_are_not() -> None:
    predicate = "t = (SELECT user_id FROM _context) AND EXISTS (SELECT 1 FROM json_each(t) j, u WHERE u.a = j.value)"
    assert qualify_tables(predicate, frozenset({"_context", "u", "t"})) == (
        't = (SELECT user_id FROM main."_context") AND EXISTS (SELECT 1 FROM json_each(t) j, main."u" WHERE u.a = j.value)')


def test_scripts_split_where_sqlite_ends_statements() -> None:
    script = "CREATE TRIGGER x AFTER INSERT ON t BEGIN SELECT 1; SELECT ';'; END; INSERT INTO t VALUES (';');;"
    assert split_statements(script) == [
        "CREATE TRIGGER x AFTER INSERT ON t BEGIN SELECT 1; SELECT ';'; END;", " INSERT INTO t VALUES (';');"]


@pytest.mark.parametrize("sql, expected", [
    ('DELETE FROM main."t"', 'DELETE FROM main."t" WHERE (o = 1)'),
    ('DELETE FROM main."t" WHERE a = 1 OR b = 2 -- note\n', 'DELETE FROM main."t" WHERE (o = 1) AND ( a = 1 OR b = 2) -- note\n'),
    ('UPDATE main."t" SET a = (SELECT 1 FROM u WHERE x) WHERE b RETURNING a;',
     'UPDATE main."t" SET a = (SELECT 1 FROM u WHERE x) WHERE (o = 1) AND ( b) RETURNING a;'),
    ('UPDATE main."t" SET a = 1 RETURNING a', 'UPDATE main."t" SET a = 1 WHERE (o = 1) RETURNING a'),
    ('UPDATE main."t" SET a = u.a FROM u WHERE u.id = t.id', 'UPDATE main."t" SET a = u.a FROM u WHERE u.id = t.id'),
    ('DELETE FROM main."t" AS x WHERE x.a = 1', 'DELETE FROM main."t" AS x WHERE x.a = 1'),
    ('INSERT INTO main."t" VALUES (1)', 'INSERT INTO main."t" VALUES (1)'),
    ('DELETE FROM main."t" WHERE 1) OR (1', 'DELETE FROM main."t" WHERE 1) OR (1'),
    ('DELETE FROM main."t" WHERE (1', 'DELETE FROM main."t" WHERE (1'),
])
def test_updates_and_deletes_filter_rows_first(sql: str, expected: str) -> None:
    assert filter_rows_first(sql, "o = 1") == expected
