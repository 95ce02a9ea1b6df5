"""The TEMP objects that enforce a policy on one connection (docs/access.md).

- Two TEMP VIEWs per filtered table, reading `main."t"` where every filter
  holds. The barrier view, named like the table (temp shadows main), ends in
  `LIMIT -1 OFFSET 0`: SQLite neither flattens such a subquery into the query
  reading it nor pushes that query's WHERE terms into it, so the reader's
  expressions see only the rows it returns, visible ones. The fast view,
  `_loot_fast_t`, is a plain view SQLite flattens, the reader's terms and the
  filters planned together (indexes on both used), so it may evaluate the
  reader's terms on hidden rows: only leakproof statements read it
  (leakproof.py, rewrite.py), and the authorizer refuses it to the others.
  (Privileged SQL names `main."t"` instead, rewritten so by rewrite.py: a
  switch inside the view, `privileged() OR filters`, would stop SQLite using
  indexes for the filters.)
- A TEMP VIEW per schema view, same definition, so it reads the filtered views.
- TEMP BEFORE triggers on `main."t"`: RAISE(IGNORE) skips a row that the
  filters hide (UPDATE and DELETE never touch it); RAISE(ABORT, 'loot-rule:N')
  fails the statement when an applicable rule does not hold. With
  recursive_triggers on, REPLACE's implicit deletes pass through them too.

Predicates read unfiltered data: their table names are qualified to `main.`.

What to install follows from the database's content alone (its schema and its
filter and rule rows), so it is worked out once per distinct content and shared
by every connection: the tenants of one application open their databases with
one query and the DDL, not by reading and compiling the same policy again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import apsw
import grpc

from loot.status import Fault
from loot.shard import system_tables
from loot.shard.access import policy as policies
from loot.shard.access.guard import Filters, holds_on, row_source
from loot.shard.access.policy import OPERATIONS, Policy, Rule, Table, is_true
from loot.shard.access.rewrite import FAST_VIEW, qualify_tables, retarget
from loot.shard.sql_text import fold, quote_name, tokens

PRIVILEGED = "loot_privileged"
# Called by the TEMP triggers watching the filters and rules: this connection changed the policy.
POLICY_WRITTEN = "loot_policy_written"
RULE_MESSAGE = "loot-rule:"


@dataclass(frozen=True, eq=False)  # compared by identity: one per distinct content, a key of statement plans
class Installed:
    """What the enforcer needs to know of an install."""

    denials: list[Denial]
    # The filters of each filtered table (not view), by lower-cased name: each has a fast view.
    filters: dict[str, Filters]
    # For the authorizer, lower-cased: names shadowed by filtered views (`unfiltered`: the tables no filter
    # names), virtual tables (and their
    # shadows), the objects that may read a filtered table directly (views, triggers), and the
    # (table, column) pairs of foreign keys, which SQLite's own checks read in main.
    filtered: frozenset[str] = frozenset()
    unfiltered: frozenset[str] = frozenset()
    virtual: frozenset[str] = frozenset()
    readers: frozenset[str] = frozenset()
    keys: frozenset[tuple[str, str]] = frozenset()
    statements: tuple[str, ...] = ()


@dataclass(frozen=True)
class Denial:
    """What a `loot-rule:N` abort means: a table, an operation and the rule (None: no rule at all)."""

    table: str
    operation: str
    rule: str | None


class Installer:
    def __init__(self, policy: Policy):
        self.policy = policy
        self.denials: list[Denial] = []
        self._tables = frozenset(fold(name) for name in [*policy.tables, *(name for name, _ in policy.views)])

    def statements(self) -> list[str]:
        ddl = []
        for table in self.policy.tables.values():
            if not table.is_open:
                ddl += self._filtered_views(table)
            ddl += [trigger for operation in OPERATIONS if (trigger := self._trigger(table, operation))]
        filtered = frozenset(self.policy.filtered)
        ddl += [retarget(_temp_view(sql), filtered, restricted=True)[0] for _, sql in self.policy.views]
        return ddl

    def filters(self) -> dict[str, Filters]:
        return {fold(name): Filters(table.name, tuple(table.columns), self._filters(table),
                                    not any(_has_subquery(predicate) for _, predicate in table.filters))
                for name, table in self.policy.tables.items() if not table.is_open}

    def checks(self) -> list[tuple[Table, str, str]]:
        """Each predicate as a query that compiles only if the predicate does: (table, name, query)."""
        return [(table, name, self.check(table, predicate)) for table in self.policy.tables.values()
                for name, predicate in [*table.filters, *((rule.name, rule.predicate) for rule in table.rules)]]

    def check(self, table: Table, predicate: str) -> str:
        """A query that compiles only if `predicate` does, on a row of `table`, as the TEMP objects use it."""
        return f"SELECT 1 FROM {_row(table, None)} WHERE ({self._predicate(predicate)}) LIMIT 0"

    def _filtered_views(self, table: Table) -> list[str]:
        """The barrier view and the fast view (see above)."""
        rows = f"SELECT * FROM main.{quote_name(table.name)} WHERE {self._filters(table)}"
        return [f"CREATE TEMP VIEW {quote_name(table.name)} AS {rows} LIMIT -1 OFFSET 0",
                f"CREATE TEMP VIEW {quote_name(FAST_VIEW + table.name)} AS {rows}"]

    def _filters(self, table: Table) -> str:
        if not table.filters:
            return "0"
        return " AND ".join(f"({self._predicate(predicate)})" for _, predicate in table.filters)

    def _trigger(self, table: Table, operation: str) -> str | None:
        if operation != "insert" and not table.filters:
            steps = ["SELECT RAISE(IGNORE)"]  # without a filter every row is hidden: no later step could run
        else:
            steps = self._steps(table, operation)
        if not steps:
            return None
        body = "".join(f"{step}; " for step in steps)
        name = quote_name(trigger_name(table.name, operation))
        return (f"CREATE TEMP TRIGGER {name} BEFORE {operation.upper()} ON main.{quote_name(table.name)} "
                f"WHEN NOT {PRIVILEGED}() BEGIN {body}END")

    def _steps(self, table: Table, operation: str) -> list[str]:
        steps = []
        if operation != "insert" and not table.is_open:
            steps.append(f"SELECT RAISE(IGNORE) WHERE NOT {self._holds(table, 'OLD', self._filters(table))}")
        rules = table.rules_for(operation)
        checked = "OLD" if operation == "delete" else "NEW"
        steps += [self._rule_check(table, operation, checked, rule) for rule in rules if not is_true(rule.predicate)]
        if not rules:
            steps.append(f"SELECT RAISE(ABORT, '{self._denial(Denial(table.name, operation, None))}')")
        return steps

    def _rule_check(self, table: Table, operation: str, row: str, rule: Rule) -> str:
        message = self._denial(Denial(table.name, operation, rule.name))
        return f"SELECT RAISE(ABORT, '{message}') WHERE NOT {self._holds(table, row, self._predicate(rule.predicate))}"

    def _holds(self, table: Table, row: str, condition: str) -> str:
        """`condition` evaluated on the trigger's OLD or NEW row, seen under the table's own name."""
        return holds_on(table.name, table.columns, row, condition)

    def _predicate(self, predicate: str) -> str:
        return qualify_tables(predicate, self._tables)

    def _denial(self, denial: Denial) -> str:
        self.denials.append(denial)
        return f"{RULE_MESSAGE}{len(self.denials) - 1}"


def _row(table: Table, row: str | None) -> str:
    return row_source(table.name, table.columns, row)


def trigger_name(table: str, operation: str) -> str:
    return f"_loot_{operation}_{table}"


def install(conn: apsw.Connection) -> Installed:
    """Replace this connection's TEMP objects with those enforcing the database's policy."""
    uninstall(conn)
    content = tuple(conn.execute(_CONTENT))
    with _planned_guard:
        installed = _planned.get(content)
    if installed is None:
        installed = _plan(conn, policies.read(conn))
        with _planned_guard:
            _planned[content] = installed
            while len(_planned) > _PLANNED_LIMIT:
                _planned.popitem(last=False)
    _create_temp_objects(conn, installed.statements)
    return installed


def _create_temp_objects(conn: apsw.Connection, statements: tuple[str, ...]) -> None:
    """Loot's own DDL without the authorizer, which would only say yes (SQL in a view or trigger body
    is authorized where a statement uses it) yet costs a third of the time. One statement at a time
    and uncached: as one script, apsw looks each statement's remaining text up in its cache (5-10%
    more CPU), and DDL is never run twice on a connection (it expires every cached statement anyway)."""
    authorizer = conn.authorizer
    conn.authorizer = None
    try:
        for sql in statements:
            conn.execute(sql, can_cache=False)
    finally:
        conn.authorizer = authorizer


# Everything an install depends on: the schema (TEMP's too, past Loot's own objects, which
# `uninstall` has just dropped), the filters and the rules. Equal content, equal install.
_CONTENT = (f"SELECT 'main', type, name, tbl_name, sql FROM main.sqlite_schema UNION ALL "
            f"SELECT 'temp', type, name, tbl_name, sql FROM temp.sqlite_schema UNION ALL "
            f"SELECT 'filter', table_name, filter_name, predicate, NULL FROM main.{system_tables.FILTERS} UNION ALL "
            f"SELECT 'rule', table_name, operation, rule_name, predicate FROM main.{system_tables.RULES}")
_PLANNED_LIMIT = 64
_planned: OrderedDict[tuple, Installed] = OrderedDict()
_planned_guard = threading.Lock()


def _plan(conn: apsw.Connection, policy: Policy) -> Installed:
    """The install for `policy`, once every predicate is known to compile on this schema."""
    installer = Installer(policy)
    for table, name, check in installer.checks():
        try:
            conn.execute(check)
        except apsw.Error as error:
            raise Fault(grpc.StatusCode.FAILED_PRECONDITION, "BAD_PREDICATE",
                        f"predicate {name} of table {table.name} does not compile: {error}",
                        table=table.name, predicate=name) from error
    statements = (*installer.statements(), *_policy_watches())
    shadowed = {fold(name) for name, table in policy.tables.items() if not table.is_open}
    readers = (shadowed | {FAST_VIEW + name for name in shadowed}
               | {fold(trigger_name(name, operation)) for name in policy.tables for operation in OPERATIONS}
               | policy.triggers)
    unfiltered = frozenset(fold(name) for name, table in policy.tables.items() if not table.filters)
    return Installed(installer.denials, installer.filters(), frozenset(policy.filtered), unfiltered,
                     frozenset(policy.virtual), frozenset(readers), frozenset(policy.keys), statements)


def uninstall(conn: apsw.Connection) -> None:
    objects = conn.execute("SELECT type, name FROM temp.sqlite_schema WHERE type IN ('view', 'trigger')").fetchall()
    for kind, name in objects:
        conn.execute(f"DROP {kind.upper()} IF EXISTS temp.{quote_name(name)}")


def _policy_watches() -> list[str]:
    """TEMP triggers reporting every row written to the filters and rules, whoever's SQL writes it."""
    return [f"CREATE TEMP TRIGGER {quote_name(f'_loot_watch_{operation}_{table}')} AFTER {operation.upper()} "
            f"ON main.{quote_name(table)} BEGIN SELECT {POLICY_WRITTEN}(); END"
            for table in (system_tables.FILTERS, system_tables.RULES) for operation in OPERATIONS]


def _has_subquery(predicate: str) -> bool:
    return any(token.is_word("select") for token in tokens(predicate))


def _temp_view(sql: str) -> str:
    """A schema view's definition, created in TEMP (so its names resolve to the filtered views)."""
    found = tokens(sql)
    index = next(i for i, token in enumerate(found) if token.is_word("view")) + 1
    if [fold(token.text) for token in found[index:index + 3]] == ["if", "not", "exists"]:
        index += 3
    name_end = index + 2 if index + 1 < len(found) and found[index + 1].text == "." else index
    return f"CREATE TEMP VIEW {quote_name(found[name_end].name or '')}{sql[found[name_end].end:]}"
