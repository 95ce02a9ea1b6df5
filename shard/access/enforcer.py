"""Filters, rules and privileged SQL on one connection (SPEC §5).

One `Enforcer` per connection. Per request: `request(claims, readonly)`
around everything, `refresh()` before the request's SQL (and again after
`before`, which may change the policy), `privileged()` around SQL the token's
privileged claims carry, `statement(sql)` around each of the request's own
statements, and `fault(error)` to explain a refusal.
"""

from __future__ import annotations

import hashlib
import re
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import apsw
import grpc

from loot.status import Fault
from shard.access import claims, policy
from shard.access.authorizer import Authorizer
from shard.access.install import PRIVILEGED, RULE_MESSAGE, Denial, Installed, install, trigger_name, uninstall
from shard.access.rewrite import changes_schema, filter_rows_first, retarget
from shard.access.sql_text import split_statements

_DENIAL = re.compile(re.escape(RULE_MESSAGE) + r"(\d+)")
# Schema claims already applied on a connection; more are rare (a deploy), so a few suffice.
_CLAIMS_REMEMBERED = 8


class Enforcer:
    def __init__(self, conn: apsw.Connection, sandbox: Callable[..., int] | None = None):
        # Weak: the connection holds this enforcer through its SQL functions and authorizer.
        self._conn = weakref.ref(conn)
        self.authorizer = Authorizer(sandbox)
        self._claims: dict[str, Any] = {}
        self._fingerprint: tuple | None = None
        self._installed = Installed([], {})
        self._applied_claims: list[bytes] = []
        conn.execute("PRAGMA recursive_triggers = ON")
        conn.create_scalar_function(PRIVILEGED, lambda: self.authorizer.privileged, 0, deterministic=True)
        conn.create_scalar_function("claim", self._claims.get, 1, deterministic=True)
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
        self._claims.update(claims.flatten(claims_json))
        if readonly != self.authorizer.readonly:
            self.authorizer.readonly = readonly
            self.authorizer.attach(self.conn)
        try:
            yield
        finally:
            self._claims.clear()

    @contextmanager
    def privileged(self) -> Iterator[None]:
        """Run SQL that sees and writes everything: schema, before, after, instead.

        Leaving expires every prepared statement if any was prepared in here:
        it must be authorized again before the request's own SQL reuses it.
        """
        if self.authorizer.privileged:
            yield
            return
        self.authorizer.privileged = True
        try:
            yield
        finally:
            self.authorizer.privileged = False
            if self.authorizer.authorized_privileged:
                self.authorizer.attach(self.conn)

    def control(self, sql: str) -> None:
        """Run the engine's own transaction control (refused to the request's SQL), never cached."""
        was = self.authorizer.privileged, self.authorizer.authorized_privileged
        self.authorizer.privileged = True
        try:
            self.conn.execute(sql, can_cache=False)
        finally:
            self.authorizer.privileged, self.authorizer.authorized_privileged = was

    @contextmanager
    def schema_change(self, claim: str) -> Iterator[None]:
        """Apply a schema claim: privileged, and without the TEMP views if the claim is new here.

        SQLite resolves unqualified names in DDL (`CREATE INDEX i ON t`,
        `DROP VIEW v`) to the TEMP views first, so DDL must not meet them. A
        claim this connection already applied changes nothing, so keeps them.
        """
        digest = hashlib.sha256(claim.encode()).digest()
        with self.privileged():
            if claim and digest not in self._applied_claims:
                self._unshadow()
            yield
        if claim and digest not in self._applied_claims:
            self._applied_claims = [*self._applied_claims, digest][-_CLAIMS_REMEMBERED:]

    def refresh(self) -> None:
        """Make the TEMP objects match the database's filters, rules and schema, if they do not."""
        if policy.fingerprint(self.conn) == self._fingerprint:
            return
        with self.privileged():
            current = policy.read(self.conn)
            self._installed = install(self.conn, current)
            self.authorizer.filtered = frozenset(current.filtered)
            self.authorizer.virtual = frozenset(current.virtual)
            self.authorizer.readers = frozenset(
                {name.lower() for name, table in current.tables.items() if not table.is_open}
                | {trigger_name(name, operation).lower() for name in current.tables for operation in policy.OPERATIONS}
                | current.triggers)
        self._fingerprint = policy.fingerprint(self.conn)

    @contextmanager
    def statement(self, sql: str) -> Iterator[str]:
        """The SQL to run for one statement: writes retargeted at main, reads kept on the filters."""
        self.authorizer.refusal = None
        if self.authorizer.privileged and changes_schema(sql):
            self._unshadow()
        rewritten, self.authorizer.target = retarget(sql, self.authorizer.filtered, not self.authorizer.privileged)
        condition = self._installed.row_filters.get(self.authorizer.target or "")
        if condition is not None and not self.authorizer.privileged:
            rewritten = filter_rows_first(rewritten, condition)
        try:
            yield rewritten
        finally:
            self.authorizer.target = None

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
        self._fingerprint = None

    def fault(self, error: apsw.Error, **metadata: object) -> Fault | None:
        """The refusal an SQLite error stands for, if it stands for one."""
        if isinstance(error, apsw.ConstraintError) and (match := _DENIAL.search(str(error))):
            return _rule_fault(self._installed.denials[int(match[1])], metadata)
        if isinstance(error, apsw.AuthError) and self.authorizer.refusal is not None:
            refusal = self.authorizer.refusal
            return Fault(grpc.StatusCode.PERMISSION_DENIED, refusal.reason, refusal.message,
                         **refusal.metadata, **metadata)
        return None


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


def for_connection(conn: apsw.Connection, sandbox: Callable[..., int] | None = None) -> Enforcer:
    """The connection's enforcer, set up on first use (with `sandbox` as the authorizer it defers to)."""
    with _lock:
        found = _enforcers.get(conn)
        if found is None:
            found = _enforcers[conn] = Enforcer(conn, sandbox)
        return found
