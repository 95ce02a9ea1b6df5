"""Rewriting names in SQL text for access control: only names move, never structure."""

from __future__ import annotations

import pytest

from loot.shard.access.guard import Filters, filter_rows_first, guard_upserts, guard_write
from loot.shard.access.leakproof import leakproof
from loot.shard.access.rewrite import qualify_tables, retarget, to_fast_views
from loot.shard.sql_text import split_statements

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


@pytest.mark.parametrize("sql", [
    "SELECT * FROM t WHERE id = ?",
    "SELECT id FROM t WHERE a > 1 AND b IN (1, 2) AND c BETWEEN 1 AND 2 AND CAST(d AS INT) = 1 AND -a * 2 % 3 = 0",
    "INSERT OR REPLACE INTO main.t (a, b) VALUES (coalesce(?, 1), ?)",
    "SELECT json_extract(body, '$.a') AS j, sum(b) FROM t WHERE id = ? GROUP BY a ORDER BY 1",
    "DELETE FROM t WHERE id = 1 RETURNING upper(body)",
])
def test_leakproof_statements(sql: str) -> None:
    assert leakproof(sql)


@pytest.mark.parametrize("sql", [
    "SELECT json_extract(body, '$.a') AS j FROM t WHERE j = 1",  # the alias stands for the call in WHERE
    "SELECT * FROM t WHERE json_extract(body, '$.a') = 1",
    'SELECT * FROM t WHERE "abs"(a) = 1',
    "SELECT * FROM t WHERE replace(a, 'x', 'y') = 'z'",
    "SELECT * FROM t WHERE a || b = 'x'",
    "SELECT * FROM t WHERE a LIKE 'x%'",
    "SELECT * FROM t WHERE body -> '$.a' = 1",
    "SELECT * FROM t WHERE id IN (SELECT id FROM u)",
    "UPDATE t SET a = abs(a) WHERE id = 1",
])
def test_leaky_statements(sql: str) -> None:
    assert not leakproof(sql)


@pytest.mark.parametrize("sql, expected", [
    ("SELECT * FROM t WHERE id = 1", 'SELECT * FROM temp."_loot_fast_t" AS "t" WHERE id = 1'),
    ("SELECT * FROM t AS x JOIN u y ON x.a = y.a", 'SELECT * FROM temp."_loot_fast_t" AS x JOIN temp."_loot_fast_u" y ON x.a = y.a'),
    ('SELECT * FROM temp."t", other WHERE a IN t AND b = 1',
     'SELECT * FROM temp."_loot_fast_t" AS "t", other WHERE a IN temp."_loot_fast_t" AND b = 1'),
    ('UPDATE main."t" SET a = 1 FROM u WHERE u.a = t.a', 'UPDATE main."t" SET a = 1 FROM temp."_loot_fast_u" AS "u" WHERE u.a = t.a'),
    ("WITH t AS (SELECT 1) SELECT * FROM t", None),  # a CTE named like a table
    ("SELECT * FROM t glob", None),  # not sure what follows the name: stay on the barrier view
])
def test_leakproof_statements_read_the_fast_views(sql: str, expected: str | None) -> None:
    assert to_fast_views(sql, FILTERED) == expected


FILTERS = Filters("t", ("a", "o"), "(o = 1)", row_only=True)
ON_T = 'EXISTS (SELECT 1 FROM (SELECT "t"."a" AS "a", "t"."o" AS "o") AS "t" WHERE (o = 1))'


@pytest.mark.parametrize("sql, expected", [
    ('DELETE FROM main."t" AS x WHERE x.a = 1',
     'DELETE FROM main."t" AS x WHERE CASE WHEN EXISTS (SELECT 1 FROM (SELECT x."a" AS "a", x."o" AS "o") AS "t" '
     'WHERE (o = 1)) THEN ( x.a = 1) ELSE 0 END'),
    ('UPDATE main."t" SET a = 1', f'UPDATE main."t" SET a = 1 WHERE ((o = 1)) AND {ON_T}'),
    ('UPDATE main."t" SET a = u.a FROM u WHERE u.a = t.a RETURNING a',
     f'UPDATE main."t" SET a = u.a FROM u WHERE CASE WHEN {ON_T} THEN ( u.a = t.a) ELSE 0 END RETURNING a'),
    ('DELETE FROM main."t" WHERE a = 1 OR a = 2',
     f'DELETE FROM main."t" WHERE ((o = 1)) AND CASE WHEN {ON_T} THEN ( a = 1 OR a = 2) ELSE 0 END'),
])
def test_leaky_writes_run_their_own_terms_on_visible_rows_only(sql: str, expected: str) -> None:
    assert guard_write(sql, FILTERS) == expected


@pytest.mark.parametrize("sql, expected", [
    ('INSERT INTO main."t" (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET o = 2 WHERE o > 0 RETURNING a',
     f'INSERT INTO main."t" (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET o = 2 WHERE CASE WHEN {ON_T} THEN ( o > 0) '
     'ELSE 0 END RETURNING a'),
    ('INSERT INTO main."t" AS n (a) VALUES (1) ON CONFLICT (a) DO NOTHING ON CONFLICT DO UPDATE SET o = 2',
     'INSERT INTO main."t" AS n (a) VALUES (1) ON CONFLICT (a) DO NOTHING ON CONFLICT DO UPDATE SET o = 2 '
     'WHERE EXISTS (SELECT 1 FROM (SELECT n."a" AS "a", n."o" AS "o") AS "t" WHERE (o = 1))'),
    ('INSERT INTO main."t" (a) VALUES (1)', 'INSERT INTO main."t" (a) VALUES (1)'),
])
def test_upserts_update_visible_rows_only(sql: str, expected: str) -> None:
    assert guard_upserts(sql, FILTERS) == expected
