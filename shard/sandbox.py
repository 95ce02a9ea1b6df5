"""The sandbox around a connection (SPEC §6), built from SQLite's own controls.

The request's own SQL runs under the authorizer's strict mode: no DDL, no
ATTACH/DETACH (VACUUM attaches, so it is refused too), no PRAGMA beyond
read-only introspection, no transaction control, no load_extension, no writes
to system tables, no writes at all under `readonly`. Privileged SQL (the
schema claim, `before`/`after`/`instead`, internal TEMP objects) runs inside
`with sandbox.privileged():` and may run DDL, but still never ATTACH, load an
extension or change how the file is stored.

Limits that do not depend on the mode are set once per connection
(`sqlite3_limit`, defensive mode, max_page_count); the progress handler stops
a statement past its time limit or the client's deadline.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator

import apsw
import grpc

from loot.status import Fault
from shard.limits import Limits
from shard.sql_errors import fault_from_sqlite
from shard.system_tables import is_system_table

# How often (in SQLite VM steps) the progress handler looks at the clock.
PROGRESS_STEPS = 1000

_WRITES = {apsw.SQLITE_INSERT, apsw.SQLITE_UPDATE, apsw.SQLITE_DELETE}
_DDL = {
    getattr(apsw, name) for name in dir(apsw)
    if name.startswith(("SQLITE_CREATE_", "SQLITE_DROP_")) and isinstance(getattr(apsw, name), int)
} | {apsw.SQLITE_ALTER_TABLE, apsw.SQLITE_REINDEX, apsw.SQLITE_ANALYZE}
_ALWAYS_ALLOWED = {apsw.SQLITE_READ, apsw.SQLITE_SELECT, apsw.SQLITE_RECURSIVE}
_NEVER = {apsw.SQLITE_ATTACH: "ATTACH (VACUUM included)", apsw.SQLITE_DETACH: "DETACH"}
_TRANSACTIONS = {apsw.SQLITE_TRANSACTION, apsw.SQLITE_SAVEPOINT}

# PRAGMAs whose argument names an object to describe: allowed with or without it.
_INTROSPECTION = {
    "table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo",
    "foreign_key_list", "foreign_key_check", "integrity_check", "quick_check",
    "collation_list", "function_list", "module_list", "pragma_list",
}
# PRAGMAs that only read a setting when given no argument (with one they would change it).
_READ_SETTINGS = {
    "user_version", "application_id", "schema_version", "data_version", "page_count", "page_size",
    "freelist_count", "max_page_count", "foreign_keys", "recursive_triggers", "encoding", "auto_vacuum",
    "journal_mode", "synchronous", "cache_size", "busy_timeout", "compile_options",
}
# PRAGMAs that even privileged SQL may not run: they weaken durability or the sandbox, or touch files.
_PRIVILEGED_FORBIDDEN = {
    "journal_mode", "synchronous", "writable_schema", "temp_store_directory", "data_store_directory",
    "mmap_size", "max_page_count", "page_size", "locking_mode", "trusted_schema", "cell_size_check",
    "query_only", "wal_checkpoint", "wal_autocheckpoint", "journal_size_limit",
}


# SQLite refuses these itself: VACUUM inside Loot's transaction, writes to its own tables (defensive mode).
_SQLITE_REFUSALS = [
    (re.compile(r"cannot VACUUM"), "VACUUM is not allowed: Loot manages the database file"),
    (re.compile(r"table sqlite_\w+ may not be modified"), "sqlite_* tables cannot be written"),
    (re.compile(r"not authorized"), "not authorized"),
]


class Sandbox:
    """One per connection: the authorizer's mode, the last refusal, the clock."""

    def __init__(self, conn: apsw.Connection, limits: Limits):
        self.conn = conn
        self.limits = limits
        self.readonly = False
        self.refusal: str | None = None
        self._privileged = 0
        self._transactions = False
        self._stop_at = float("inf")
        self._deadline = float("inf")
        self._quick_until = float("inf")
        self.timed_out: str | None = None
        self.quick_expired = False
        _lock_down(conn, limits)
        conn.authorizer = self._authorize
        conn.set_progress_handler(self._progress, PROGRESS_STEPS)

    @contextlib.contextmanager
    def privileged(self, transactions: bool = False) -> Iterator[None]:
        """Run trusted SQL: DDL allowed; `transactions` also allows BEGIN/COMMIT/SAVEPOINT."""
        previous = self._transactions
        self._privileged += 1
        self._transactions = transactions
        try:
            yield
        finally:
            self._privileged -= 1
            self._transactions = previous

    @contextlib.contextmanager
    def request(self, readonly: bool, deadline: float | None, quick_until: float | None = None) -> Iterator[None]:
        """The span of one request: its `readonly` claim and the client's deadline (monotonic);
        `quick_until` ends a quick attempt early (see `quick_expired`)."""
        self.readonly = readonly
        self._deadline = float("inf") if deadline is None else deadline
        self._quick_until = float("inf") if quick_until is None else quick_until
        self.quick_expired = False
        try:
            yield
        finally:
            self.readonly = False
            self._deadline = self._quick_until = self._stop_at = float("inf")

    def start_statement(self) -> None:
        """Start the clock for one statement: its own limit, or the client's deadline if sooner."""
        self.refusal = None
        self.timed_out = None
        self._stop_at = min(time.monotonic() + self.limits.statement_seconds, self._deadline, self._quick_until)

    def past_quick_budget(self) -> bool:
        return time.monotonic() >= self._quick_until

    def stop_clock(self) -> None:
        """No time limit until the next statement: Loot's own commit or rollback is never interrupted."""
        self._stop_at = float("inf")

    def check_deadline(self) -> None:
        """Refuse to start work the client has stopped waiting for."""
        if time.monotonic() >= self._deadline:
            raise Fault(grpc.StatusCode.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED",
                        "the client's deadline passed before the request could run")

    def fault(self, error: apsw.Error, **metadata: object) -> Fault:
        """The fault for a failed statement, saying why when the sandbox or a time limit stopped it."""
        refusal = self.refusal or _sqlite_refusal(error)
        if refusal is not None and isinstance(error, (apsw.AuthError, apsw.SQLError)):
            return Fault(grpc.StatusCode.PERMISSION_DENIED, "NOT_AUTHORIZED", f"refused by the sandbox: {refusal}",
                         **metadata)
        if isinstance(error, apsw.InterruptError) and self.timed_out:
            return Fault(grpc.StatusCode.DEADLINE_EXCEEDED, "INTERRUPTED", f"interrupted: {self.timed_out}", **metadata)
        return fault_from_sqlite(error, **metadata)

    def _progress(self) -> bool:
        now = time.monotonic()
        if now < self._stop_at:
            return False
        if now >= self._quick_until:
            self.quick_expired = True
            return True
        self.timed_out = ("the client's deadline passed" if now >= self._deadline
                          else f"the statement ran longer than {self.limits.statement_seconds:g} s")
        return True

    def _authorize(self, action: int, arg1: str | None, arg2: str | None, database: str | None,
                   source: str | None) -> int:
        if action in _ALWAYS_ALLOWED:  # most callbacks: answered first, they run for every column read
            return apsw.SQLITE_OK
        refusal = self._privileged_refusal(action, arg1, arg2) if self._privileged else self._request_refusal(action, arg1, arg2)
        if refusal is None:
            return apsw.SQLITE_OK
        # DDL says it best: DROP TABLE is also a DELETE from sqlite_master, asked about first.
        self.refusal = refusal if action in _DDL else self.refusal or refusal
        return apsw.SQLITE_DENY

    def _privileged_refusal(self, action: int, arg1: str | None, arg2: str | None) -> str | None:
        if action in _NEVER:
            return f"{_NEVER[action]} is never allowed"
        if action == apsw.SQLITE_FUNCTION and (arg2 or "").lower() == "load_extension":
            return "load_extension is never allowed"
        if action == apsw.SQLITE_PRAGMA and (arg1 or "").lower() in _PRIVILEGED_FORBIDDEN:
            return f"PRAGMA {arg1} is never allowed"
        if action in _TRANSACTIONS and not self._transactions:
            return "transaction control is not allowed here: Loot runs the request in one transaction"
        return None

    def _request_refusal(self, action: int, arg1: str | None, arg2: str | None) -> str | None:
        if action in _NEVER:
            return f"{_NEVER[action]} is not allowed"
        if action in _DDL:
            return "schema changes (CREATE/DROP/ALTER) are not allowed in a request; use the schema claim"
        if action in _TRANSACTIONS:
            return "transaction control is not allowed: Loot runs each request in one transaction"
        if action == apsw.SQLITE_PRAGMA:
            return _pragma_refusal((arg1 or "").lower(), arg2)
        if action == apsw.SQLITE_FUNCTION:
            return "load_extension is not allowed" if (arg2 or "").lower() == "load_extension" else None
        if action in _WRITES:
            return self._write_refusal(arg1 or "")
        return None

    def _write_refusal(self, table: str) -> str | None:
        if table.lower().startswith("sqlite_"):
            # SQLite guards these itself (defensive mode); DDL's own writes to them are asked about before
            # the DDL, and refusing those here would hide the clearer DDL refusal.
            return None
        if self.readonly:
            return f"this token is readonly: writing {table} is not allowed"
        if is_system_table(table):
            return f"{table} is a system table: requests cannot write it"
        return None


def _sqlite_refusal(error: apsw.Error) -> str | None:
    """Refusals SQLite makes itself, before the authorizer is asked."""
    message = str(error)
    for pattern, refusal in _SQLITE_REFUSALS:
        if pattern.search(message):
            return refusal
    return None


def _pragma_refusal(name: str, argument: str | None) -> str | None:
    if name in _INTROSPECTION or (name in _READ_SETTINGS and argument is None):
        return None
    return f"PRAGMA {name}{'' if argument is None else ' with an argument'} is not allowed; only read-only introspection is"


def _lock_down(conn: apsw.Connection, limits: Limits) -> None:
    conn.enable_load_extension(False)
    conn.config(apsw.SQLITE_DBCONFIG_DEFENSIVE, 1)
    conn.config(apsw.SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0)
    conn.limit(apsw.SQLITE_LIMIT_ATTACHED, 0)
    conn.limit(apsw.SQLITE_LIMIT_LENGTH, limits.result_bytes)
    conn.limit(apsw.SQLITE_LIMIT_SQL_LENGTH, limits.sql_bytes)
    conn.limit(apsw.SQLITE_LIMIT_VARIABLE_NUMBER, limits.parameters)
    conn.limit(apsw.SQLITE_LIMIT_EXPR_DEPTH, 1000)
    conn.limit(apsw.SQLITE_LIMIT_COMPOUND_SELECT, 500)
    conn.limit(apsw.SQLITE_LIMIT_TRIGGER_DEPTH, 100)
