"""SQLite's quadratic built-ins, replaced on each connection by versions whose one call is bounded.

SQLite checks its time limits (progress handler, sqlite3_interrupt) between VM steps only, and one call of
a built-in function is one step. Its `instr`, `replace`, LIKE and GLOB compare the pattern at every
position of the text: two values of a few MiB take minutes in that one step, out of reach of any clock.
Here:

- `instr` and `replace` use Python's string search, linear in the text (two-way search for long needles);
- `like` and `glob` split the pattern at its `%` (`*`) into fixed-length pieces, matched left to right
  (leftmost match of each piece: exact for these patterns); a piece of plain characters is found with
  the linear string search, one with `_`, `?` or `[...]` by `re`, at most (text length × piece length)
  comparisons: past MAX_COMPARISONS (a piece counted as at least MIN_PIECE_COST characters) the call is
  refused, RESOURCE_EXHAUSTED `TOO_EXPENSIVE`;
- every call first checks the statement's clock (`Clock.check`), so a row of many calls stops at the limit.

Overriding `like` turns off SQLite's LIKE-prefix index optimisation, which Loot's default (case-
insensitive LIKE, BINARY columns) rarely met.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import apsw
import grpc

from loot.status import Fault

# Comparisons one LIKE or GLOB call may make in pieces `re` matches: ~0.1-0.2 s (docs/shard.md). A piece
# costs at each position at least what MIN_PIECE_COST characters would (the regex engine's own overhead).
MAX_COMPARISONS = 40_000_000
MIN_PIECE_COST = 16
LIKE_PATTERN_BYTES = 50_000  # SQLite's own default limit, kept
_CACHED_PATTERN_CHARS = 1_000  # longer patterns are compiled for each call, not kept

Value = int | float | str | bytes | None
_BLOBS_NEVER_MATCH = "LIKE_DOESNT_MATCH_BLOBS" in apsw.compile_options  # as SQLite's own like/glob, then


class Clock(Protocol):
    def check(self) -> None:
        """Raise apsw.InterruptError once the running statement is past its time limit."""


def install(conn: apsw.Connection, clock: Clock, max_length: int) -> None:
    """Register the bounded versions on `conn`, each checking `clock` before it works; `max_length` is
    the connection's value limit (SQLITE_LIMIT_LENGTH), in bytes."""
    def checked(function: Callable[..., Value]) -> Callable[..., Value]:
        def call(*args: Value) -> Value:
            clock.check()
            return function(*args)
        return call

    for name, function, arguments in [("instr", instr, 2), ("like", like, 2), ("like", like, 3), ("glob", glob, 2),
                                      ("replace", functools.partial(replace, max_length=max_length), 3)]:
        conn.create_scalar_function(name, checked(function), arguments, deterministic=True)


def instr(text: Value, needle: Value) -> int | None:
    if text is None or needle is None:
        return None
    if isinstance(text, bytes) and isinstance(needle, bytes):
        return text.find(needle) + 1
    return _text(text).find(_text(needle)) + 1


def replace(text: Value, old: Value, new: Value, max_length: int) -> Value:
    if text is None or old is None or new is None:
        return None
    old = _text(old)
    if not old:
        return _text(text)  # SQLite returns the first argument as text
    text, new = _text(text), _text(new)
    if len(new) > len(old) and len(text) + text.count(old) * (len(new) - len(old)) > max_length:
        raise apsw.TooBigError("string or blob too big")  # before building it; SQLite checks the exact size
    return text.replace(old, new)


def like(pattern: Value, text: Value, escape: Value = "") -> bool | None:
    if _BLOBS_NEVER_MATCH and (isinstance(pattern, bytes) or isinstance(text, bytes)):
        return False
    if pattern is None or text is None or escape is None:
        return None
    escape = _text(escape)
    if escape and len(escape) != 1:  # one character, as SQLite requires (the empty string: no escape)
        raise apsw.SQLError("ESCAPE expression must be a single character")
    return _match(_Pattern.of(_text(pattern), escape, glob=False), _text(text))


def glob(pattern: Value, text: Value) -> bool | None:
    if _BLOBS_NEVER_MATCH and (isinstance(pattern, bytes) or isinstance(text, bytes)):
        return False
    if pattern is None or text is None:
        return None
    return _match(_Pattern.of(_text(pattern), "", glob=True), _text(text))


@dataclass(frozen=True)
class _Piece:
    regex: re.Pattern[str]
    length: int  # characters it matches: each of its parts matches exactly one
    literal: str | None  # its characters, when it has no `_`, `?` or `[...]`


@dataclass(frozen=True)
class _Pattern:
    pieces: tuple[_Piece, ...]  # split at each `%` / `*`; one piece: no such wildcard
    fold_ascii: bool  # LIKE: ASCII letters match either case, and only they
    impossible: bool  # SQLite never matches it (an escape or `[` left open at its end)

    @staticmethod
    def of(pattern: str, escape: str, glob: bool) -> _Pattern:
        if len(pattern) * 4 > LIKE_PATTERN_BYTES and len(pattern.encode()) > LIKE_PATTERN_BYTES:
            raise apsw.SQLError("LIKE or GLOB pattern too complex")
        if len(pattern) <= _CACHED_PATTERN_CHARS:
            return _compiled(pattern, escape, glob)
        return _compile(pattern, escape, glob)


def _match(pattern: _Pattern, text: str) -> bool:
    if pattern.impossible:
        return False
    folded = text.lower() if pattern.fold_ascii and text.isascii() else None
    first, *middle = pattern.pieces
    if not middle:
        return first.regex.fullmatch(text) is not None
    *middle, last = middle
    end = len(text) - last.length
    if end < first.length or not first.regex.match(text) or not last.regex.fullmatch(text, end):
        return False
    at = first.length
    for piece in middle:
        at = _find(piece, text, folded, at, end, pattern.fold_ascii)
        if at < 0:
            return False
    return True


def _find(piece: _Piece, text: str, folded: str | None, start: int, end: int, fold_ascii: bool) -> int:
    """Where the piece's leftmost match in text[start:end] ends, or -1."""
    if piece.literal is not None and (not fold_ascii or folded is not None):
        found = (folded if fold_ascii else text).find(piece.literal, start, end)
        return -1 if found < 0 else found + piece.length
    if (end - start) * max(piece.length, MIN_PIECE_COST) > MAX_COMPARISONS:
        raise Fault(grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_EXPENSIVE",
                    f"a LIKE or GLOB pattern would compare a piece of {piece.length} characters at each of "
                    f"{end - start} positions; use a shorter pattern or text", limit=MAX_COMPARISONS)
    found = piece.regex.search(text, start, end)
    return -1 if found is None else found.end()


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str, escape: str, glob: bool) -> _Pattern:
    return _compile(pattern, escape, glob)


def _compile(pattern: str, escape: str, glob: bool) -> _Pattern:
    any_run = "*" if glob else "%"
    pieces: list[_Piece] = []
    parts: list[str] = []  # the current piece's regex parts, one per character matched
    literal: list[str] | None = []
    i, impossible = 0, False
    while i < len(pattern):
        char = pattern[i]
        i += 1
        if char == any_run:
            pieces.append(_piece(parts, literal, glob))
            parts, literal = [], []
        elif (char == "?" if glob else char == "_"):
            parts.append(".")
            literal = None
        elif glob and char == "[":
            regex, i = _glob_class(pattern, i)
            impossible = impossible or regex is None
            parts.append(regex or "(?!)")
            literal = None
        else:
            if char == escape:
                if i == len(pattern):
                    impossible = True
                    break
                char = pattern[i]
                i += 1
            parts.append(re.escape(char))
            if literal is not None:
                literal.append(char.lower() if not glob and char.isascii() else char)
    pieces.append(_piece(parts, literal, glob))
    return _Pattern(tuple(pieces), fold_ascii=not glob, impossible=impossible)


def _piece(parts: list[str], literal: list[str] | None, glob: bool) -> _Piece:
    flags = re.DOTALL if glob else re.DOTALL | re.IGNORECASE | re.ASCII
    return _Piece(re.compile("".join(parts), flags), len(parts), None if literal is None else "".join(literal))


def _glob_class(pattern: str, i: int) -> tuple[str | None, int]:
    """The regex for the `[...]` opening before `i`, and where it ends; None when it never closes."""
    negated = i < len(pattern) and pattern[i] == "^"
    i += negated
    members: list[str] = []
    first = True
    while i < len(pattern) and (pattern[i] != "]" or first):
        low = pattern[i]
        if i + 2 < len(pattern) and pattern[i + 1] == "-" and pattern[i + 2] != "]":
            high = pattern[i + 2]
            # SQLite matches the low end itself first, so a reversed range still matches it
            members.append(f"{re.escape(low)}-{re.escape(high)}" if low <= high else re.escape(low))
            i += 3
        else:
            members.append(re.escape(low))
            i += 1
        first = False
    if i >= len(pattern):
        return None, i
    if not members:
        return (".", i + 1) if negated else ("(?!)", i + 1)
    return f"[{'^' if negated else ''}{''.join(members)}]", i + 1


_FLOATS = apsw.Connection(":memory:")  # SQLite's own text for a REAL, which Python's repr does not always match
_FLOATS_LOCK = threading.Lock()


def _text(value: Value) -> str:
    """The value as SQLite's text functions see it."""
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    with _FLOATS_LOCK:
        return _FLOATS.execute("SELECT CAST(? AS TEXT)", (value,)).get
