"""From the live schema to the claimed one: the steps, or why it cannot be done.

Tables and columns are only added; indexes, views and triggers converge;
`_filters` and `_rules` rows converge. Every refusal is decided from the two
schemas alone, never from the rows, so one claim does the same to every tenant.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import apsw

from loot.shard import system_tables
from loot.shard.schema.inspect import Catalog, Column, Entry, Table
from loot.shard.schema.claim_text import fold, in_main, tokens
from loot.shard.sql_errors import sqlite_message

_NULL = ("id:null",)
_PROBE = "_loot_probe"  # a reserved name, so never the live table's own
_DROP_ORDER = ("trigger", "view", "index")
_ROW_LABELS = {system_tables.FILTERS: ("filter", "filter_name"), system_tables.RULES: ("rule", "rule_name")}


@dataclass(frozen=True)
class Step:
    subject: str
    sql: str
    params: tuple = ()


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)
    refusals: list[tuple[str, str]] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)

    def refuse(self, subject: str, reason: str) -> None:
        self.refusals.append((subject, reason))


def plan(live: Catalog, claimed: Catalog) -> Plan:
    result = Plan()
    drops, creates = _derived(live, claimed, result)
    derived_changes, result.changes = result.changes, []
    result.steps = drops + _tables(live, claimed, result) + creates
    result.changes += derived_changes
    result.steps += _system_rows(live, claimed, result)
    return result


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _tables(live: Catalog, claimed: Catalog, result: Plan) -> list[Step]:
    steps = []
    for key, entry in claimed.tables.items():
        have = live.tables.get(key)
        if have is None:
            steps.append(Step(f"table {entry.name}", in_main(entry.sql)))
            result.changes.append(f"created table {entry.name}")
        elif have.sql != entry.sql:
            steps += _evolve(have, live.table(key), claimed.table(key), result)
    return steps


def _evolve(entry: Entry, have: Table, want: Table, result: Plan) -> list[Step]:
    """ADD COLUMN steps that take `have` to `want`, if that keeps every row as it is."""
    subject = f"table {want.name}"
    if (have.kind, have.module) != (want.kind, want.module):
        result.refuse(subject, "its definition differs from the live one and a table is never rebuilt")
        return []
    refused_before = len(result.refusals)
    new = [column for key, column in want.columns.items() if key not in have.columns]
    for key, column in want.columns.items():
        if key in have.columns and (differences := have.columns[key].differences(column)):
            result.refuse(f"column {want.name}.{column.name}", f"the claim changes its {', '.join(differences)}; "
                          "changing a column would rewrite its data")
    for column in new:
        if reason := _cannot_add(column, want):
            result.refuse(f"column {want.name}.{column.name}", reason)
    if len(result.refusals) > refused_before:
        return []
    steps = [Step(f"column {want.name}.{c.name}", f"ALTER TABLE main.{_quoted(entry.name)} ADD COLUMN {c.definition}")
             for c in new]
    try:
        reached = _projected(entry, steps, new, want) if steps else have
    except apsw.Error as error:
        result.refuse(subject, f"SQLite cannot add its new columns: {sqlite_message(error)}")
        return []
    for reason in _table_level_differences(reached, want):
        result.refuse(subject, reason)
    result.changes += [f"added column {want.name}.{c.name}" for c in new]
    return steps


def _cannot_add(column: Column, want: Table) -> str | None:
    """Why ADD COLUMN could fail on a table holding rows (SQLite checks these only when rows exist)."""
    default = None if column.default == _NULL else column.default
    if column.hidden == 3:
        return "a STORED generated column cannot be added to a table that may hold rows"
    if column.notnull and default is None and column.hidden == 0:
        return "a NOT NULL column without a non-NULL default cannot be added to a table that may hold rows"
    if column.checks or (column.notnull and column.hidden):
        return "a new column's NOT NULL or CHECK constraint would be checked against existing rows"
    if default is not None and any(fold(column.name) in fk[1] for fk in want.foreign_keys):
        return "a new REFERENCES column needs a NULL default"
    return None


def _projected(entry: Entry, steps: list[Step], new: list[Column], want: Table) -> Table:
    """The live table after the ADD COLUMN steps, tried on an empty copy (so SQLite's own refusals show).

    SQLite checks some things (a non-constant default; in a STRICT table, a
    default of the wrong type) only when the table holds rows, so each new
    stored column is also added to a one-row probe table: the answer is then
    the same for every tenant.
    """
    scratch = apsw.Connection(":memory:")
    try:
        probe = f"CREATE TABLE {_PROBE} (x ANY) STRICT" if want.strict else f"CREATE TABLE {_PROBE} (x)"
        scratch.execute(f"{entry.sql}; {probe}; INSERT INTO {_PROBE} VALUES (1)")
        for index, column in enumerate(c for c in new if not c.hidden):
            after_name = column.definition[tokens(column.definition)[0].end:]
            scratch.execute(f"ALTER TABLE {_PROBE} ADD COLUMN c{index}{after_name}")
        for step in steps:
            scratch.execute(step.sql)
        return Catalog(scratch).table(entry.key)
    finally:
        scratch.close()


def _table_level_differences(have: Table, want: Table) -> list[str]:
    foreign_keys, keys = have.constraints_over(set(want.columns))
    said = {"WITHOUT ROWID": (have.without_rowid, want.without_rowid), "STRICT": (have.strict, want.strict),
            "table CHECK constraints": (have.checks, want.checks), "foreign keys": (foreign_keys, want.foreign_keys),
            "PRIMARY KEY / UNIQUE constraints": (keys, want.keys)}
    differing = [what for what, (live, claimed) in said.items() if live != claimed]
    differing += [f"column {c.name} ({', '.join(d)})" for k, c in want.columns.items()
                  if k in have.columns and (d := have.columns[k].differences(c))]
    return [f"the claim changes its {what}; that would rebuild the table" for what in differing]


def _derived(live: Catalog, claimed: Catalog, result: Plan) -> tuple[list[Step], list[Step]]:
    """Drops (triggers, views, indexes) and creates (claim order) that make derived objects match."""
    stale = {key for key, entry in live.derived.items()
             if key not in claimed.derived or (entry.sql != claimed.derived[key].sql
                                               and live.signature(entry) != claimed.signature(claimed.derived[key]))}
    stale |= {key for key, entry in live.derived.items()
              if key[0] == "trigger" and ("view", fold(entry.table)) in stale}  # dropped with their view
    for (kind, key), entry in claimed.derived.items():
        if kind != "trigger" and key in live.tables:
            result.refuse(f"{kind} {entry.name}", f"a table named {live.tables[key].name} holds data there")
    drops = [_drop(live.derived[key]) for kind in _DROP_ORDER for key in stale if key[0] == kind]
    creates = [Step(f"{entry.type} {entry.name}", in_main(entry.sql))
               for key, entry in claimed.derived.items() if key not in live.derived or key in stale]
    for key, entry in live.derived.items():
        if key in stale:
            result.changes.append(f"{'replaced' if key in claimed.derived else 'dropped'} {entry.type} {entry.name}")
    result.changes += [f"created {entry.type} {entry.name}" for key, entry in claimed.derived.items()
                       if key not in live.derived]
    return drops, creates


def _drop(entry: Entry) -> Step:
    return Step(f"{entry.type} {entry.name}", f"DROP {entry.type.upper()} IF EXISTS main.{_quoted(entry.name)}")


def _system_rows(live: Catalog, claimed: Catalog, result: Plan) -> list[Step]:
    steps = []
    for table, (label, name_column) in _ROW_LABELS.items():
        (columns, have), (_, want) = live.rows(table), claimed.rows(table)
        if have == want:
            continue
        steps.append(Step(table, f"DELETE FROM main.{table}"))
        placeholders = ", ".join("?" * len(columns))
        steps += [Step(table, f"INSERT INTO main.{table} ({', '.join(map(_quoted, columns))}) VALUES ({placeholders})", row)
                  for row in want]
        result.changes += _row_changes(label, [dict(zip(columns, row)) for row in have],
                                       [dict(zip(columns, row)) for row in want], name_column)
    return steps


def _row_changes(label: str, have: list[dict], want: list[dict], name_column: str) -> list[str]:
    def by_name(rows: list[dict]) -> dict[str, dict]:
        return {f"{row['table_name']}.{row[name_column]}": row for row in rows}

    before, after = by_name(have), by_name(want)
    said = [f"added {label} {name}" for name in after if name not in before]
    said += [f"changed {label} {name}" for name in after if name in before and before[name] != after[name]]
    said += [f"removed {label} {name}" for name in before if name not in after]
    return said
