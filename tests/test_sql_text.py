"""The shared SQL lexer: SQLite's lexical rules, ASCII-only case folding."""

import apsw
from hypothesis import given, settings
from hypothesis import strategies as st

from loot.shard.sql_text import fold, is_blank, split_statements, tokens


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


# Pieces that make splitting hard: strings, quoted names and comments holding `;`, triggers, blobs, numbers.
_PIECES = ["a", " ", "\n", ";", "'", '"', "`", "[", "]", "-", "/", "*", "--", "/*", "*/", "x'0a'", "1e-5", "\u212a",
           "\u00a0", "SELECT 1", "CREATE TRIGGER t AFTER INSERT ON x BEGIN ", " END"]


def _split_by_tokens(script: str) -> list[str]:
    """The definition split_statements implements without building tokens: end at a `;` token where SQLite would."""
    statements, start = [], 0
    for token in tokens(script):
        if token.text == ";" and apsw.complete(script[start:token.end]):
            statements.append(script[start:token.end])
            start = token.end
    if script[start:].strip():
        statements.append(script[start:])
    return [statement for statement in statements if any(token.text != ";" for token in tokens(statement))]


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=40).map("".join))
def test_statements_end_where_the_tokens_say(script: str) -> None:
    assert split_statements(script) == _split_by_tokens(script)
    assert is_blank(script) == (not split_statements(script))
