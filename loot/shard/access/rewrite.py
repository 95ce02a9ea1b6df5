"""Rewriting SQL text by token positions, never by parsing it.

Three rewrites (guard.py adds conditions to writes):
- the table references of a predicate, or of privileged SQL, are pointed at
  `main.`, so they read unfiltered data even though the filtered TEMP views
  shadow every table;
- a statement that writes gets its target pointed at `main."t"` (the TEMP
  triggers there enforce filters and rules), while any other `main.t`/`temp.t`
  of a filtered table it names is pointed at the filtered view `temp."t"`;
- a leakproof statement (leakproof.py) reads its filtered tables through their
  fast views instead of the barrier views named like them (install.py).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import apsw

from loot.shard.sql_text import Token, fold, quote_name, tokens

FAST_VIEW = "_loot_fast_"
KEYWORDS = frozenset(fold(word) for word in apsw.keywords)

_SCHEMAS = ("main", "temp")
_CLAUSE_ENDS = ("where", "group", "having", "order", "limit", "window", "union", "intersect", "except",
                "on", "using", "select", "values", "returning", "set")
_VERBS = ("insert", "replace", "update", "delete", "select", "values")


@dataclass(frozen=True)
class Name:
    """A table name as written: `t` or `schema.t`, spanning tokens [first, last]."""

    schema: str | None
    table: str
    first: int
    last: int


def qualify_tables(predicate: str, tables: frozenset[str]) -> str:
    """`predicate` with every reference to one of `tables` qualified as main."t"."""
    return retarget(predicate, tables, restricted=False)[0]


_CACHED_SQL_LENGTH = 4096


def retarget(sql: str, filtered: frozenset[str], restricted: bool) -> tuple[str, str | None]:
    """`sql` with its write target on main."t"; the target's name if it is a filtered table.

    When `restricted` (the request's own SQL), every other schema-qualified
    name of a filtered table or view is pointed at its filtered view, so
    `main.t` reads no more than `t` does. Otherwise (privileged SQL) every
    table reference is pointed at main, which is unfiltered.
    """
    if len(sql) <= _CACHED_SQL_LENGTH:  # the same few statements come again and again; huge ones rarely
        return _cached_retarget(sql, filtered, restricted)
    return _retarget(sql, filtered, restricted)


@functools.lru_cache(maxsize=4096)
def _cached_retarget(sql: str, filtered: frozenset[str], restricted: bool) -> tuple[str, str | None]:
    return _retarget(sql, filtered, restricted)


def _retarget(sql: str, filtered: frozenset[str], restricted: bool) -> tuple[str, str | None]:
    found = tokens(sql)
    names = _qualified_names(found) if restricted else _table_references(found)
    schema = "temp" if restricted else "main"
    edits = {name.first: (name, schema) for name in names
             if name.table in filtered and name.schema in (None, *_SCHEMAS)}
    target = write_target(found)
    written = target.table if target is not None and target.table in filtered else None
    if target is not None and written is not None:
        edits[target.first] = (target, "main")
    return apply_edits(sql, [(found[name.first].start, found[name.last].end, f"{schema}.{quote_name(name.table)}")
                        for name, schema in edits.values()]), written


# Words that may follow a table in FROM or JOIN without being its alias.
_AFTER_TABLE = ("where", "join", "left", "right", "full", "inner", "cross", "natural", "outer", "on", "using", "group",
                "order", "limit", "window", "union", "except", "intersect", "indexed", "not", "returning", "set",
                "having")


def to_fast_views(sql: str, tables: frozenset[str]) -> str | None:
    """`sql` (retargeted) reading each of `tables` through its fast view, under the table's own name.

    None when a reference cannot be moved for sure (a CTE named like a table,
    a word after the name that may or may not be an alias): the statement then
    reads through the barrier views, which is always right.
    """
    found = tokens(sql)
    if _names_a_cte(found, tables):
        return None
    edits = []
    for name in _table_references(found):
        if name.table not in tables or name.schema not in (None, "temp"):
            continue
        view = f"temp.{quote_name(FAST_VIEW + name.table)}"
        if _is_word(found, name.first - 1, "in"):
            edits.append((found[name.first].start, found[name.last].end, view))
            continue
        aliased = _aliased(found, name.last + 1)
        if aliased is None:
            return None
        edits.append((found[name.first].start, found[name.last].end,
                      view if aliased else f"{view} AS {quote_name(name.table)}"))
    return apply_edits(sql, edits)


def _aliased(found: list[Token], index: int) -> bool | None:
    """Whether the token at `index` starts an alias of the table before it; None if unsure."""
    if index >= len(found):
        return False
    token = found[index]
    if token.kind == "quoted" or token.is_word("as") or (token.kind == "word" and fold(token.text) not in KEYWORDS):
        return True
    if token.is_word(*_AFTER_TABLE) or token.text in (",", ")", ";"):
        return False
    return None


def _names_a_cte(found: list[Token], tables: frozenset[str]) -> bool:
    """Whether a WITH clause may define a CTE named like one of `tables` (`t AS (` or `t(a) AS (`)."""
    if not any(token.is_word("with") for token in found):
        return False
    return any(token.name in tables and _text(found, index + 1).lower() in ("as", "(")
               and (_is_word(found, index - 1, "with", "recursive") or _text(found, index - 1) == ",")
               for index, token in enumerate(found))


def changes_schema(sql: str) -> bool:
    """Whether `sql` is DDL, whose unqualified names SQLite would resolve to the TEMP views."""
    found = tokens(sql)
    return bool(found) and found[0].is_word("create", "drop", "alter")


def _table_references(found: list[Token]) -> list[Name]:
    """Names in table position: after FROM, JOIN, a FROM-list comma, or `x IN t`."""
    names, in_from, expect = [], [False], False
    for index, token in enumerate(found):
        if token.text == "(":
            in_from.append(False)
            expect = False
        elif token.text == ")" and len(in_from) > 1:
            in_from.pop()
        elif token.is_word("from"):
            in_from[-1] = expect = True
        elif token.is_word("join", "in"):
            expect = True
        elif token.text == "," and in_from[-1]:
            expect = True
        elif token.is_word(*_CLAUSE_ENDS):
            in_from[-1] = expect = False
        elif expect:
            expect = False
            name = _name_at(found, index)
            if name is not None and not _is_call(found, name.last):
                names.append(name)
    return names


def _qualified_names(found: list[Token]) -> list[Name]:
    """Every `main.x` / `temp.x` naming a table (not `main.x.column`)."""
    names = []
    for index, token in enumerate(found):
        if token.name in _SCHEMAS and _text(found, index + 1) == "." and _text(found, index - 1) != ".":
            name = _name_at(found, index)
            if name is not None and _text(found, name.last + 1) != "." and not _is_call(found, name.last):
                names.append(name)
    return names


def write_target(found: list[Token]) -> Name | None:
    index = verb_index(found)
    if index is None:
        return None
    verb = fold(found[index].text)
    index += 1
    if verb in ("insert", "update") and _is_word(found, index, "or"):
        index += 2
    if verb in ("insert", "replace") and _is_word(found, index, "into"):
        index += 1
    elif verb == "delete" and _is_word(found, index, "from"):
        index += 1
    elif verb not in ("update",):
        return None
    return _name_at(found, index)


def verb_index(found: list[Token]) -> int | None:
    """Where the statement's own verb is: past EXPLAIN and any WITH clause."""
    index = 0
    while _is_word(found, index, "explain", "query", "plan"):
        index += 1
    if not _is_word(found, index, "with"):
        return index if _is_word(found, index, *_VERBS) else None
    depth = 0
    for position in range(index, len(found)):
        text = found[position].text
        depth += (text == "(") - (text == ")")
        if depth == 0 and found[position].is_word(*_VERBS):
            return position
    return None


def _name_at(found: list[Token], index: int) -> Name | None:
    if index >= len(found) or found[index].name is None:
        return None
    if _text(found, index + 1) == "." and index + 2 < len(found) and found[index + 2].name is not None:
        return Name(found[index].name, found[index + 2].name, index, index + 2)
    return Name(None, found[index].name, index, index)


def _is_call(found: list[Token], index: int) -> bool:
    return _text(found, index + 1) == "("


def _is_word(found: list[Token], index: int, *words: str) -> bool:
    return index < len(found) and found[index].is_word(*words)


def _text(found: list[Token], index: int) -> str:
    return found[index].text if 0 <= index < len(found) else ""


def apply_edits(sql: str, edits: list[tuple[int, int, str]]) -> str:
    """`sql` with each [start, end) span replaced, in one pass (SQL may be a MiB of names)."""
    pieces, position = [], 0
    for start, end, text in sorted(edits):
        pieces += [sql[position:start], text]
        position = end
    return "".join(pieces) + sql[position:]
