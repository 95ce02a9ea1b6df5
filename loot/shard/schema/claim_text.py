"""The schema engine's questions about SQL text, on the shared lexer (loot/shard/sql_text.py):
a claim's statements, a column's definition text (for ADD COLUMN), and whether
two definitions differ only in case, quoting, whitespace or comments.
SQLite itself decides what a statement means (validate.py, inspect.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice

from loot.shard.sql_text import Token, fold, is_blank, iter_tokens, split_statements, tokens  # noqa: F401 (the schema engine imports them from here)
from loot.byte_lru import memoize


def normalized(sql_tokens: list[Token]) -> tuple[str, ...]:
    """What two spellings of the same SQL have in common (identifiers fold, strings do not)."""
    return tuple(("id" if t.kind in ("word", "quoted") else t.kind) + ":" + t.norm for t in sql_tokens)


_LEADING = re.compile(r"(?:\s+|--[^\n]*|/\*.*?(?:\*/|\Z))*", re.DOTALL)


def statements(sql: str) -> Iterator[str]:
    """The claim's statements one by one, as written, without leading comments."""
    for statement in split_statements(sql):
        yield statement[_LEADING.match(statement).end():].rstrip()


def _group_end(sql_tokens: list[Token], open_at: int) -> int:
    """Index just past the parenthesis that closes the one at `open_at`."""
    depth = 0
    for index in range(open_at, len(sql_tokens)):
        if sql_tokens[index].kind == "op":
            depth += {"(": 1, ")": -1}.get(sql_tokens[index].text, 0)
        if depth == 0:
            return index + 1
    return len(sql_tokens)


# Enough tokens for `CREATE UNIQUE INDEX IF NOT EXISTS name .` (the longest head before a name).
_HEAD = 9


def name_index(sql_tokens: list[Token]) -> int:
    """Where the object's name is in SQLite's stored `CREATE [UNIQUE|VIRTUAL] <kind> name ...`."""
    index = 1
    while sql_tokens[index].is_word("unique", "virtual", "temp", "temporary"):
        index += 1
    index += 1
    if sql_tokens[index].is_word("if"):
        index += 3
    return index


def after_name(sql_tokens: list[Token]) -> list[Token]:
    """The definition without its `CREATE ... name` head (so a name's spelling never matters)."""
    index = name_index(sql_tokens)
    if index + 1 < len(sql_tokens) and sql_tokens[index + 1].text == ".":
        index += 2
    return sql_tokens[index + 1:]


@memoize(4 * 1024 * 1024)  # the same claims' objects are created in database after database
def in_main(sql: str) -> str:
    """`CREATE ... name` as `CREATE ... main.name`, so TEMP objects of the same name never capture it."""
    sql_tokens = list(islice(iter_tokens(sql), _HEAD))
    index = name_index(sql_tokens)
    if index + 1 < len(sql_tokens) and sql_tokens[index + 1].text == ".":
        return sql
    return sql[:sql_tokens[index].start] + "main." + sql[sql_tokens[index].start:]


@dataclass(frozen=True)
class Part:
    """One comma-separated part of a CREATE TABLE body: a column or a table constraint."""

    text: str
    tokens: list[Token]

    @property
    def is_constraint(self) -> bool:
        return self.tokens[0].is_word("constraint", "primary", "unique", "check", "foreign")

    def groups_after(self, *words: str) -> list[tuple[str, ...]]:
        """Normalized `( ... )` groups that follow one of `words` at this part's top level."""
        found, index, depth = [], 0, 0
        while index < len(self.tokens):
            token = self.tokens[index]
            if depth == 0 and token.is_word(*words) and index + 1 < len(self.tokens) and self.tokens[index + 1].text == "(":
                end = _group_end(self.tokens, index + 1)
                found.append(normalized(self.tokens[index + 2:end - 1]))
                index = end
                continue
            if token.kind == "op" and token.text in "()":
                depth += 1 if token.text == "(" else -1
            index += 1
        return found


def table_parts(sql: str) -> list[Part]:
    """The columns and table constraints of a stored CREATE TABLE statement."""
    sql_tokens = tokens(sql)
    open_at = next((i for i, t in enumerate(sql_tokens) if t.text == "("), None)
    if open_at is None:
        return []
    body = sql_tokens[open_at + 1:_group_end(sql_tokens, open_at) - 1]
    parts: list[list[Token]] = [[]]
    depth = 0
    for token in body:
        if token.kind == "op" and token.text in "(),":
            depth += {"(": 1, ")": -1, ",": 0}[token.text]
            if token.text == "," and depth == 0:
                parts.append([])
                continue
        parts[-1].append(token)
    return [Part(sql[part[0].start:part[-1].end], part) for part in parts if part]
