"""Keeping a write's own expressions off the rows its target's filters hide, by token positions.

The TEMP triggers on `main."t"` skip a hidden row only when SQLite is about to
write it: after the statement's WHERE, and an UPDATE's SET, ran on the row.
So the filters go into the statement itself, as a condition on the target's
row however the statement names it (its alias, or the table's name):

- `filter_rows_first`: `WHERE (filters) AND (its own)`, the filters' index
  used; for leakproof statements, where only the index matters.
- `guard_write`: `WHERE CASE WHEN <filters on the row> THEN (its own) ELSE 0
  END`, so SQLite evaluates the statement's own WHERE, and then its SET, only
  on visible rows, whatever plan it picks (a CASE is one term, never split);
  for aliased targets and UPDATE ... FROM too.
- `guard_upserts`: the same on each `ON CONFLICT ... DO UPDATE` (its WHERE
  runs before its SET on the conflicting row).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from loot.shard.access.rewrite import Name, apply_edits, verb_index, write_target
from loot.shard.sql_text import Token, quote_name, tokens

_AFTER_TARGET = ("set", "where", "returning", "indexed", "not", "order", "limit", "from", "default", "values",
                 "select", "on")
_ENDS = ("returning", "order", "limit")


def row_source(table: str, columns: Sequence[str], row: str | None) -> str:
    """A one-row subquery holding the columns of the row SQL calls `row` (NULLs for None), named like
    the table, so a predicate's bare column names, and `table.column`, mean that row's."""
    values = ", ".join(f"{f'{row}.{quote_name(column)}' if row else 'NULL'} AS {quote_name(column)}"
                       for column in columns)
    return f"(SELECT {values}) AS {quote_name(table)}"


def holds_on(table: str, columns: Sequence[str], row: str, condition: str) -> str:
    """Whether `condition`, over `table`'s bare column names, holds for the row SQL calls `row`."""
    return f"EXISTS (SELECT 1 FROM {row_source(table, columns, row)} WHERE {condition})"


@dataclass(frozen=True)
class Filters:
    """A filtered table's filters, to put into a write of it."""

    table: str
    columns: tuple[str, ...]
    # Every filter ANDed, over the row's bare column names.
    condition: str
    # Reads nothing but the row (no subquery): may stand as a plain WHERE term, its index used.
    row_only: bool

    def on(self, row: str) -> str:
        """Whether the filters hold for the row SQL calls `row`."""
        return holds_on(self.table, self.columns, row, self.condition)


@dataclass(frozen=True)
class _Shape:
    """Where an UPDATE's or DELETE's WHERE is, and how it names its target's row."""

    row: str
    aliased: bool
    joins: bool
    where: int | None
    last: int


def filter_rows_first(sql: str, condition: str) -> str:
    """An UPDATE or DELETE whose WHERE starts with the target's filters: `WHERE (filters) AND (its own)`.

    Left as is when the target is aliased or UPDATE joins FROM other tables,
    where the filters' bare column names could mean something else.
    """
    found = tokens(sql)
    shape = _shape(found)
    if shape is None or shape.aliased or shape.joins:
        return sql
    return _wrap(sql, found, shape.where, shape.last, lead=f"({condition})", guard=None)


def guard_write(sql: str, filters: Filters) -> str:
    """An UPDATE or DELETE whose own WHERE and SET run only on rows `filters` let it see."""
    found = tokens(sql)
    shape = _shape(found)
    if shape is None:
        return sql
    lead = f"({filters.condition})" if filters.row_only and not shape.aliased and not shape.joins else None
    return _wrap(sql, found, shape.where, shape.last, lead=lead, guard=filters.on(shape.row))


def guard_upserts(sql: str, filters: Filters) -> str:
    """An INSERT whose every DO UPDATE runs only on a conflicting row `filters` let it see."""
    found = tokens(sql)
    target = write_target(found)
    if target is None:
        return sql
    row = _row_name(found, target)[0]
    edits: list[tuple[int, int, str]] = []
    depth, clause, where = 0, None, None
    for position, token in enumerate(found[target.last + 1:], target.last + 1):
        depth += (token.text == "(") - (token.text == ")")
        if depth != 0 or token.text in ("(", ")"):
            continue
        if clause is not None and (token.is_word("on", "returning") or token.text == ";"):
            edits += _wrap_edits(found, where, position - 1, None, filters.on(row))
            clause = where = None
        if token.is_word("update") and found[position - 1].is_word("do"):
            clause = position
        elif token.is_word("where") and clause is not None:
            where = position
        if token.text == ";":
            break
    else:
        if clause is not None:
            edits += _wrap_edits(found, where, len(found) - 1, None, filters.on(row))
    return apply_edits(sql, edits)


def _shape(found: list[Token]) -> _Shape | None:
    index = verb_index(found)
    target = write_target(found)
    if index is None or target is None or not found[index].is_word("update", "delete"):
        return None
    row, after = _row_name(found, target)
    where, last, depth, joins = None, after - 1, 0, False
    for position in range(after, len(found)):
        token = found[position]
        depth += (token.text == "(") - (token.text == ")")
        if depth < 0:  # unbalanced: SQLite refuses it as written, and must not get a balanced version
            return None
        if depth == 0 and (token.is_word(*_ENDS) or token.text == ";"):
            break
        if depth == 0 and token.is_word("from") and where is None:
            joins = True
        if depth == 0 and token.is_word("where") and where is None:
            where = position
        last = position
    if depth != 0:
        return None
    return _Shape(row, row != quote_name(target.table), joins, where, last)


def _row_name(found: list[Token], target: Name) -> tuple[str, int]:
    """How the statement calls its target's row (its alias, else the table's name), and where what follows starts."""
    after = target.last + 1
    if after < len(found) and found[after].is_word("as"):
        after += 1
    elif after >= len(found) or found[after].name is None or found[after].is_word(*_AFTER_TARGET):
        return quote_name(target.table), after
    return found[after].text, after + 1


def _wrap(sql: str, found: list[Token], where: int | None, last: int, lead: str | None, guard: str | None) -> str:
    return apply_edits(sql, _wrap_edits(found, where, last, lead, guard))


def _wrap_edits(found: list[Token], where: int | None, last: int, lead: str | None,
                guard: str | None) -> list[tuple[int, int, str]]:
    """`WHERE [lead AND] [CASE WHEN guard THEN] (its own) [ELSE 0 END]`, or `WHERE lead AND guard` without one."""
    if where is None:
        condition = " AND ".join(part for part in (lead, guard) if part)
        return [(found[last].end, found[last].end, f" WHERE {condition}")]
    opening = "".join((f" {lead} AND" if lead else "", f" CASE WHEN {guard} THEN" if guard else "", " ("))
    closing = ") ELSE 0 END" if guard else ")"
    return [(found[where].end, found[where].end, opening), (found[last].end, found[last].end, closing)]
