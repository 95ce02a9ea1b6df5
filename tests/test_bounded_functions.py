"""The bounded instr/replace/like/glob (loot/shard/bounded_functions.py) answer as SQLite's own do."""

from __future__ import annotations

import itertools
import random

import apsw
import pytest

from loot.shard import bounded_functions


class _NoClock:
    def check(self) -> None:
        pass


def _connections() -> tuple[apsw.Connection, apsw.Connection]:
    bounded = apsw.Connection(":memory:")
    bounded_functions.install(bounded, _NoClock(), 16 * 1024 * 1024)
    return apsw.Connection(":memory:"), bounded


SQLITE, BOUNDED = _connections()
VALUES = [None, "", "a", "abc", "ABC", "a%c", "a_c", "aXc", "xabcabc", "héllo", "HÉLLO", "[x]", "a]b", "*?",
          b"ab\x00c", b"", 12, 1.5, -3, "1.5", "a\\%"]
PATTERNS = ["", "%", "_", "a%", "%c", "%b%", "a_c", "A%C", "%é%", "%É%", "h_llo", "a\\%", "a\\%c", "%\\_%", "[a-c]*",
            "*[^a]*", "[]x]*", "*[", "a[b-a]c", "?b*", "*?*?*", "[*]?", "a*", "*c", "%%a%%", "é", "_%_", 12, None]


def _same(sql: str, *args: object) -> None:
    expected = SQLITE.execute(sql, args).fetchall()
    assert BOUNDED.execute(sql, args).fetchall() == expected, (sql, args)


@pytest.mark.parametrize("text, needle", list(itertools.product(VALUES, VALUES)))
def test_instr(text: object, needle: object) -> None:
    _same("SELECT instr(?, ?)", text, needle)


@pytest.mark.parametrize("text, old", list(itertools.product(VALUES, VALUES)))
def test_replace(text: object, old: object) -> None:
    if isinstance(text, bytes) and b"\x00" in text:
        return  # SQLite's text of a blob stops at its NUL; ours keeps the bytes after it
    _same("SELECT replace(?, ?, 'new')", text, old)


@pytest.mark.parametrize("pattern, text", list(itertools.product(PATTERNS, VALUES)))
def test_like_glob(pattern: object, text: object) -> None:
    if isinstance(text, bytes) and b"\x00" in text:
        return
    _same("SELECT ? LIKE ?, ? GLOB ?, like(?, ?, '\\')", text, pattern, text, pattern, pattern, text)


def test_random_patterns_match_as_sqlite() -> None:
    chance = random.Random(15)
    for _ in range(3000):
        text = "".join(chance.choice("abAB_%") for _ in range(chance.randrange(8)))
        like = "".join(chance.choice("ab%_A\\") for _ in range(chance.randrange(6)))
        glob = "".join(chance.choice("ab*?[]^-A") for _ in range(chance.randrange(7)))
        _same("SELECT ? LIKE ?, ? LIKE ? ESCAPE '\\', ? GLOB ?", text, like, text, like, text, glob)


def test_an_escape_of_more_than_one_character_is_an_error() -> None:
    with pytest.raises(apsw.SQLError, match="ESCAPE expression must be a single character"):
        BOUNDED.execute("SELECT 'a' LIKE 'a' ESCAPE 'xy'").fetchall()
