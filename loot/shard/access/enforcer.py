"""Filters, rules and privileged SQL on one connection (docs/access.md).

One `Enforcer` per connection. Per request: `request(claims, readonly)`
around everything, `apply_schema(claim)` first,
`refresh()` before the request's SQL (and again after
`before`, which may change the policy), `privileged()` around SQL the token's
privileged claims carry, `statement(sql)` around each of the request's own
statements, and `fault(error)` to explain a refusal.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import apsw
import grpc

from loot.status import Fault
from loot.shard import schema
from loot.shard.access import claims, policy
from loot.shard.access.authorizer import Authorizer
from loot.shard.access.install import POLICY_WRITTEN, PRIVILEGED, RULE_MESSAGE, Denial, Installed, install, uninstall
from loot.shard.access.rewrite import changes_schema, retarget
from loot.shard.access.statement import plan
from loot.shard.sql_errors import quotes_a_value
from loot.shard.sql_text import split_statements

_DENIAL = re.compile(re.escape(RULE_MESSAGE) + r"(\d+)")


class Enforcer:
    def __init__(self, conn: apsw.Connection):
        # Weak: the connection holds this enforcer through its SQL functions and authorizer.
        self._conn = weakref.ref(conn)
        self.authorizer = Authorizer()
        self._claims: dict[str, Any] = {}
        # The last request's claims, flattened: a client's requests on one database mostly carry the same token.
        self._last_claims: tuple[str, dict[str, Any]] = ("", {})
        self._stamp: tuple | None = None
        # Set by the TEMP triggers on _filters and _rules (install.py): the policy must be read again.
        self._policy_written = True
        self._installed = Installed([], {})
        # Whether the last statement was the request's own (not privileged SQL): its errors may not quote values.
        self._own = False
        conn.execute("PRAGMA recursive_triggers = ON")
        conn.create_scalar_function(PRIVILEGED, lambda: self.authorizer.privileged, 0, deterministic=True)
        conn.create_scalar_function("claim", self._claims.get, 1, deterministic=True)
        conn.create_scalar_function(POLICY_WRITTEN, self._note_policy_written, 0)
        self.authorizer.attach(conn)

    @property
    def conn(self) -> apsw.Connection:
        conn = self._conn()
        if conn is None:
            raise RuntimeError("the connection was closed")
        return conn

    @contextmanager
    def request(self, claims_json: str, readonly: bool) -> Iterator[None]:
        """The token's claims (for claim()) and readonly flag, for the length of one request."""
        if claims_json != self._last_claims[0]:
            self._last_claims = (claims_json, claims.flatten(claims_json))
        self._claims.update(self._last_claims[1])
        if readonly != self.authorizer.readonly:
            self.authorizer.readonly = readonly
            self.authorizer.attach(self.conn)
        try:
            yield
        finally:
            self._claims.clear()

    @contextmanager
    def privileged(self, transactions: bool = False) -> Iterator[None]:
        """Run SQL that sees and writes everything (schema, before, after, instead, Describe, destroy),
        but never ATTACH, load_extension or storage pragmas; `transactions` also allows BEGIN/COMMIT.

        Leaving expires every prepared statement if any was prepared in here:
        it must be authorized again before the request's own SQL reuses it.
        """
        was = self.authorizer.privileged, self.authorizer.transactions
        self.authorizer.privileged, self.authorizer.transactions = True, transactions
        try:
            yield
        finally:
            self.authorizer.privileged, self.authorizer.transactions = was
            if not self.authorizer.privileged and self.authorizer.authorized_privileged:
                self.authorizer.attach(self.conn)

    @property
    def compiled_for(self) -> object:
        """Replaced whenever the schema or the policy may have changed (at each new install): a key for what
        depends on how SQLite compiles the request's statements."""
        return self._installed

    def control(self, sql: str) -> None:
        """Run the engine's own transaction control (refused to the request's SQL), never cached."""
        was = self.authorizer.privileged, self.authorizer.transactions, self.authorizer.authorized_privileged
        self.authorizer.privileged = self.authorizer.transactions = True
        try:
            self.conn.execute(sql, can_cache=False)
        finally:
            self.authorizer.privileged, self.authorizer.transactions, self.authorizer.authorized_privileged = was

    def apply_schema(self, claim: str) -> list[str]:
        """The schema phase: apply a claim privileged (schema.apply runs its own transaction), and
        without the TEMP views unless the schema engine already knows the claim changes nothing here.

        SQLite resolves unqualified names in DDL (`CREATE INDEX i ON t`,
        `DROP VIEW v`) to the TEMP views first, so DDL must not meet them.
        """
        # Checked unprivileged: a statement prepared privileged would expire the connection's statement cache.
        if schema.unchanged(self.conn, claim):
            return []
        with self.privileged(transactions=True):
            self._unshadow()
            return schema.apply(self.conn, claim)

    def refresh(self) -> None:
        """Make the TEMP objects match the database's filters, rules and schema, if they may not."""
        if not self._policy_written and policy.stamp(self.conn) == self._stamp:
            return
        with self.privileged():
            self._installed = install(self.conn)
            self.authorizer.filtered = self._installed.filtered
            self.authorizer.unfiltered = self._installed.unfiltered
            self.authorizer.virtual = self._installed.virtual
            self.authorizer.readers = self._installed.readers
            self.authorizer.keys = self._installed.keys
        self._stamp = policy.stamp(self.conn)
        self._policy_written = False  # only now: a policy that failed to install is tried again, never skipped

    @contextmanager
    def statement(self, sql: str) -> Iterator[str]:
        """The SQL to run for one statement: writes retargeted at main, reads kept on the filters
        (the request's own through views and guards that keep its expressions off hidden rows)."""
        self.authorizer.refusal = None
        self._own = not self.authorizer.privileged
        if self._own:
            planned = plan(sql, self._installed)
            rewritten, self.authorizer.target = planned.sql, planned.target
            self.authorizer.fast, self.authorizer.writes = planned.fast, planned.writes
        else:
            if changes_schema(sql):
                self._unshadow()
            rewritten, self.authorizer.target = retarget(sql, self.authorizer.filtered, restricted=False)
        try:
            yield rewritten
        finally:
            self.authorizer.target = None
            self.authorizer.fast = self.authorizer.writes = False

    def run_script(self, script: str) -> None:
        """Run privileged SQL statement by statement, discarding results."""
        with self.privileged():
            for sql in split_statements(script):
                with self.statement(sql) as rewritten:
                    for _ in self.conn.execute(rewritten):
                        pass

    def _unshadow(self) -> None:
        """Take the TEMP objects away until the next refresh (only privileged SQL runs before it)."""
        uninstall(self.conn)
        self._stamp = None

    def _note_policy_written(self) -> None:
        self._policy_written = True

    def fault(self, error: apsw.Error, **metadata: object) -> Fault | None:
        """The refusal an SQLite error stands for, if it stands for one."""
        if isinstance(error, apsw.ConstraintError) and (match := _DENIAL.search(str(error))):
            return _rule_fault(self._installed.denials[int(match[1])], metadata)
        if self.authorizer.refusal is not None and _denied(error):
            refusal = self.authorizer.refusal
            return Fault(grpc.StatusCode.PERMISSION_DENIED, refusal.reason, refusal.message,
                         **refusal.metadata, **metadata)
        if self._own and isinstance(error, apsw.SQLError) and quotes_a_value(error):
            return Fault(grpc.StatusCode.INVALID_ARGUMENT, "SQL_ERROR_WITHHELD",
                         "the statement failed on a value; SQLite's message is withheld because it quotes the value "
                         "(docs/access.md)", **metadata)
        return None


def _denied(error: apsw.Error) -> bool:
    """An authorizer's denial: SQLITE_AUTH, or for a function (load_extension) an SQL error saying so."""
    return isinstance(error, apsw.AuthError) or (isinstance(error, apsw.SQLError)
                                                 and "not authorized" in str(error))


def _rule_fault(denial: Denial, metadata: dict[str, object]) -> Fault:
    if denial.rule is None:
        return Fault(grpc.StatusCode.PERMISSION_DENIED, "NO_RULE",
                     f"table {denial.table} has no rule allowing {denial.operation}",
                     table=denial.table, rule="", operation=denial.operation, **metadata)
    return Fault(grpc.StatusCode.PERMISSION_DENIED, "RULE_VIOLATED",
                 f"rule {denial.rule} on table {denial.table} refused this {denial.operation}",
                 table=denial.table, rule=denial.rule, operation=denial.operation, **metadata)


_enforcers: weakref.WeakKeyDictionary[apsw.Connection, Enforcer] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def for_connection(conn: apsw.Connection) -> Enforcer:
    """The connection's enforcer, and with it its authorizer, set up on first use."""
    with _lock:
        found = _enforcers.get(conn)
        if found is None:
            found = _enforcers[conn] = Enforcer(conn)
        return found
