"""The shared SQL lexer: SQLite's lexical rules, ASCII-only case folding."""

import apsw

from shard.sql_text import fold, split_statements, tokens


def test_case_folds_like_sqlite_ascii_only() -> None:
    conn = apsw.Connection(":memory:")
    conn.execute('CREATE TABLE "k" (x); CREATE TABLE "\u212a" (y)')  # "K" (Kelvin sign) is another table
    assert len(conn.execute("SELECT name FROM sqlite_schema").fetchall()) == 2
    assert fold("\u212a") != fold("k") and fold("Main") == "main"
    assert [t.name for t in tokens('"K" [Ab] `c` \'d\' \u212a')] == ["k", "ab", "c", "d", "\u212a"]
    assert not tokens("\u0131nsert")[0].is_word("insert"), "dotless i is not an ASCII keyword"


def test_statements_end_where_sqlite_ends_them() -> None:
    script = """CREATE TABLE t (x); -- a comment; with a semicolon
    CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT ';'; SELECT 2; END;
    ; ;
    SELECT 'tail'"""
    parts = split_statements(script)
    assert len(parts) == 3
    assert parts[1].strip().startswith("-- a comment") or parts[1].strip().startswith("CREATE TRIGGER")
    assert parts[1].rstrip().endswith("END;") and parts[2].strip() == "SELECT 'tail'"
