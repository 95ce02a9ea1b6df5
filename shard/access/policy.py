"""What access control must enforce on a database: its tables, views,
triggers, filters and rules, read from the database itself (SPEC §5)."""

from __future__ import annotations

from dataclasses import dataclass, field

import apsw

from shard import system_tables

OPERATIONS = ("insert", "update", "delete")
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

    @property
    def filtered(self) -> set[str]:
        """Lower-cased names that the TEMP schema shadows with filtered views."""
        return {name.lower() for name, table in self.tables.items() if not table.is_open} | {
            name.lower() for name, _ in self.views}


def read(conn: apsw.Connection) -> Policy:
    tables = {name: Table(name, _columns(conn, name)) for name in _plain_tables(conn)}
    by_name = {name.lower(): table for name, table in tables.items()}
    for table_name, filter_name, predicate in conn.execute(
            f"SELECT table_name, filter_name, predicate FROM main.{system_tables.FILTERS} ORDER BY 1, 2"):
        if (table := by_name.get(str(table_name).lower())) is not None:
            table.filters.append((filter_name, predicate))
    for table_name, operation, rule_name, predicate in conn.execute(
            f"SELECT table_name, operation, rule_name, predicate FROM main.{system_tables.RULES} ORDER BY 1, 3"):
        if (table := by_name.get(str(table_name).lower())) is not None:
            table.rules.append(Rule(table.name, str(operation), rule_name, predicate))
    views = conn.execute("SELECT name, sql FROM main.sqlite_schema WHERE type = 'view' ORDER BY rowid").fetchall()
    triggers = {name.lower() for name, in conn.execute("SELECT name FROM main.sqlite_schema WHERE type = 'trigger'")}
    virtual = {name.lower() for name, in conn.execute(
        "SELECT name FROM pragma_table_list WHERE schema = 'main' AND type IN ('virtual', 'shadow')")}
    return Policy(tables, views, triggers - {name.lower() for name, _ in views}, virtual)


def fingerprint(conn: apsw.Connection) -> tuple:
    """Changes whenever the policy or the objects it is installed as may have changed."""
    return (
        conn.execute("PRAGMA main.schema_version").fetchone()[0],
        conn.execute("PRAGMA temp.schema_version").fetchone()[0],
        conn.execute(f"SELECT group_concat(table_name || x'00' || filter_name || x'00' || predicate, x'01') "
                     f"FROM main.{system_tables.FILTERS}").fetchone()[0],
        conn.execute(f"SELECT group_concat(table_name || x'00' || operation || x'00' || rule_name || x'00' "
                     f"|| predicate, x'01') FROM main.{system_tables.RULES}").fetchone()[0],
    )


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
