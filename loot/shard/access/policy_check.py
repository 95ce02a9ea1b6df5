"""A claim's `_filters` and `_rules` rows, checked against the tables the claim builds.

A row the enforcer could not enforce would otherwise be ignored (a table or an
operation that does not exist: the table stays closed) or found by every later
request (a predicate that does not compile: BAD_PREDICATE). Checked where the
claim is built, it is refused with the claim, and nothing of the claim applies.
Each predicate is compiled as the TEMP objects compile it (install.py), never run.
"""

from __future__ import annotations

import apsw

from loot.shard import system_tables
from loot.shard.access import policy as policies
from loot.shard.access.install import Installer
from loot.shard.access.policy import RULE_OPERATIONS, Table
from loot.shard.sql_errors import sqlite_message
from loot.shard.sql_text import fold


def refusals(conn: apsw.Connection) -> list[tuple[str, str]]:
    """(row, why) for each filter and rule row of `conn` that could not be enforced there."""
    policy = policies.read(conn)
    check = _Check(conn, Installer(policy), {fold(name): table for name, table in policy.tables.items()})
    found = []
    for table_name, name, predicate in conn.execute(policies.FILTER_ROWS).fetchall():
        if why := check.row(str(table_name), predicate):
            found.append((f"filter {table_name}.{name}", why))
    for table_name, operation, name, predicate in conn.execute(policies.RULE_ROWS).fetchall():
        if fold(str(operation)) not in RULE_OPERATIONS:
            found.append((f"rule {table_name}.{name}", f"its operation {operation!r} is none of {', '.join(RULE_OPERATIONS)}"))
        if why := check.row(str(table_name), predicate):
            found.append((f"rule {table_name}.{name}", why))
    return found


class _Check:
    def __init__(self, conn: apsw.Connection, installer: Installer, tables: dict[str, Table]):
        self.conn, self.installer, self.tables = conn, installer, tables

    def row(self, table_name: str, predicate: object) -> str | None:
        """Why a row naming `table_name` with `predicate` could not be enforced, if it could not."""
        table = self.tables.get(fold(table_name))
        if table is None:
            return self._not_a_table(table_name)
        if not isinstance(predicate, str):
            return "its predicate is not text"
        return self._compile_error(self.installer.check(table, predicate))

    def _not_a_table(self, name: str) -> str:
        found = self.conn.execute("SELECT type FROM pragma_table_list WHERE schema = 'main' AND name = ? COLLATE NOCASE",
                                  (name,)).fetchone()
        if found is None:
            return f"the schema has no table {name}"
        if system_tables.is_system_table(name):
            return f"{name} is a system table: the request's SQL reads all of it and never writes it"
        if found[0] == "view":
            return f"{name} is a view: it reads through the filters of its tables"
        return (f"{name} is a virtual table{' (a shadow table)' if found[0] == 'shadow' else ''}: the request's SQL "
                "cannot reach it; privileged SQL, which is not filtered, can")

    def _compile_error(self, query: str) -> str | None:
        """Prepare `query` and run none of it (LIMIT 0); a predicate smuggling a second statement is stopped before it."""
        cursor = self.conn.cursor()
        statements = []

        def first_only(*_: object) -> bool:
            statements.append(None)
            return len(statements) == 1

        cursor.exec_trace = first_only
        try:
            cursor.execute(query).fetchall()
        except apsw.ExecTraceAbort:
            return "its predicate is not one SQL expression"
        except apsw.Error as error:
            return f"its predicate does not compile: {sqlite_message(error)}"
        finally:
            cursor.close(force=True)
        return None
