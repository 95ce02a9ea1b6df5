"""What access control must enforce on a database: its tables, views,
triggers, filters and rules, read from the database itself (docs/access.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

import apsw

from loot.shard import system_tables
from loot.shard.sql_text import fold

OPERATIONS = ("insert", "update", "delete")
# What a rule's operation may say (any case): one operation, or all three.
RULE_OPERATIONS = (*OPERATIONS, "write")
FILTER_ROWS = f"SELECT table_name, filter_name, predicate FROM main.{system_tables.FILTERS} ORDER BY 1, 2"
RULE_ROWS = f"SELECT table_name, operation, rule_name, predicate FROM main.{system_tables.RULES} ORDER BY 1, 3"
_OPEN = ("true", "1")


@dataclass(frozen=True)
class Rule:
    table: str
    operation: str
    name: str
    predicate: str

    def applies_to(self, operation: str) -> bool:
        return self.operation.lower() in (operation, "write")


@dataclass
class Table:
    name: str
    columns: list[str]
    filters: list[tuple[str, str]] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        """Every row visible to everyone: reads need no filtered view."""
        return bool(self.filters) and all(is_true(predicate) for _, predicate in self.filters)

    def rules_for(self, operation: str) -> list[Rule]:
        return [rule for rule in self.rules if rule.applies_to(operation)]


@dataclass
class Policy:
    tables: dict[str, Table]
    views: list[tuple[str, str]]
    triggers: set[str]
    # Virtual tables and their shadow tables: no triggers can guard them.
    virtual: set[str]
    # (table, column), lower-cased: both ends of every foreign key, which SQLite's own checks read.
    keys: set[tuple[str, str]] = field(default_factory=set)

    @property
    def filtered(self) -> set[str]:
        """Lower-cased names that the TEMP schema shadows with filtered views."""
        return {fold(name) for name, table in self.tables.items() if not table.is_open} | {
            fold(name) for name, _ in self.views}


def read(conn: apsw.Connection) -> Policy:
    tables = {name: Table(name, _columns(conn, name)) for name in _plain_tables(conn)}
    by_name = {fold(name): table for name, table in tables.items()}
    for table_name, filter_name, predicate in conn.execute(FILTER_ROWS):
        if (table := by_name.get(fold(str(table_name)))) is not None:
            table.filters.append((filter_name, predicate))
    for table_name, operation, rule_name, predicate in conn.execute(RULE_ROWS):
        if (table := by_name.get(fold(str(table_name)))) is not None:
            table.rules.append(Rule(table.name, str(operation), rule_name, predicate))
    views = conn.execute("SELECT name, sql FROM main.sqlite_schema WHERE type = 'view' ORDER BY rowid").fetchall()
    triggers = {fold(name) for name, in conn.execute("SELECT name FROM main.sqlite_schema WHERE type = 'trigger'")}
    virtual = {fold(name) for name, in conn.execute(
        "SELECT name FROM pragma_table_list WHERE schema = 'main' AND type IN ('virtual', 'shadow')")}
    keys = {key for name in tables for key in _foreign_key_columns(conn, name)}
    return Policy(tables, views, triggers - {fold(name) for name, _ in views}, virtual, keys)


def stamp(conn: apsw.Connection) -> tuple[int, int, int]:
    """Changes whenever DDL (main or TEMP) or another connection's commit may have changed the policy.

    This connection's own writes to the filters and rules do not change it: the
    TEMP triggers install.py puts on those tables report them as they happen.
    """
    return (
        conn.execute("PRAGMA main.schema_version").fetchone()[0],
        conn.execute("PRAGMA temp.schema_version").fetchone()[0],
        conn.execute("PRAGMA main.data_version").fetchone()[0],
    )


def _foreign_key_columns(conn: apsw.Connection, table: str) -> set[tuple[str, str]]:
    """Both ends of `table`'s foreign keys; a key naming no parent column references its primary key."""
    keys = set()
    for parent, child, parent_column in conn.execute(
            'SELECT "table", "from", "to" FROM pragma_foreign_key_list(?, \'main\')', (table,)):
        keys.add((fold(table), fold(child)))
        parent_columns = [parent_column] if parent_column is not None else [name for name, in conn.execute(
            "SELECT name FROM pragma_table_info(?, 'main') WHERE pk > 0", (parent,))]
        keys |= {(fold(parent), fold(column)) for column in parent_columns}
    return keys


def _plain_tables(conn: apsw.Connection) -> list[str]:
    """Ordinary tables: not virtual ones, their shadow tables, nor system tables."""
    rows = conn.execute("SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table'")
    return [name for name, in rows if not system_tables.is_system_table(name)]


def _columns(conn: apsw.Connection, table: str) -> list[str]:
    return [name for name, hidden in conn.execute(
        "SELECT name, hidden FROM pragma_table_xinfo(?, 'main')", (table,)) if hidden != 1]


def is_true(predicate: str) -> bool:
    """A predicate that holds for every row: nothing to check."""
    return predicate.strip().lower() in _OPEN
