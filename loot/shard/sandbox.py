"""The sandbox around a connection (docs/shard.md#the-sandbox): SQLite's own limits and a clock.

What SQL may do is decided by the connection's one authorizer, owned by the
access enforcer (loot/shard/access/authorizer.py): the request's SQL restricted,
privileged SQL free except ATTACH, load_extension and storage pragmas. The
sandbox adds what does not depend on the mode, set once per connection
(`sqlite3_limit`, defensive mode, no extension loading, bounded versions of
SQLite's quadratic functions: loot/shard/bounded_functions.py), and the clock: the
progress handler and the watchdog (loot/shard/watchdog.py) stop a statement past its
time limit or the client's deadline, and a commit hook refuses to commit a
request past the client's deadline (its answer would be DEADLINE_EXCEEDED).
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterator

import apsw
import grpc

from loot.status import Fault
from loot.shard import bounded_functions, watchdog
from loot.shard.limits import Limits
from loot.shard.sql_errors import fault_from_sqlite
from loot.shard.memory import sqlite_heap_limit

# How often (in SQLite VM steps) the progress handler looks at the clock.
PROGRESS_STEPS = 1000
# How long a statement waits for a lock another connection holds (`loot backup` reads from another process).
BUSY_MS = 5000

# SQLite refuses these itself, before any authorizer is asked: VACUUM inside Loot's transaction,
# writes to its own tables (defensive mode).
_SQLITE_REFUSALS = [
    (re.compile(r"cannot VACUUM"), "VACUUM is not allowed: Loot manages the database file"),
    (re.compile(r"table sqlite_\w+ may not be modified"), "sqlite_* tables cannot be written"),
]


class Sandbox:
    """One per connection: its limits and the clock of the running statement."""

    def __init__(self, conn: apsw.Connection, limits: Limits):
        self.limits = limits
        self._conn = weakref.ref(conn)  # weak: the connection holds this sandbox through its progress handler
        self._stop_at = float("inf")
        self._deadline = float("inf")
        self._inline_until = float("inf")  # the CPU time (thread_time) an attempt on the event loop may reach
        self._clock = threading.Lock()  # the watchdog's interrupt against the start of the next statement's clock
        self._commit_by_deadline = False
        self.timed_out: str | None = None
        self.gave_up = False
        # What a full database means while the account's bytes quota holds its page limit below its own
        # (loot/shard/storage.py: OpenDatabase.limit_growth): that quota's refusal, given the statement's metadata.
        self.full: Callable[..., Fault] | None = None
        self._value_bytes = limits.result_bytes  # SQLITE_LIMIT_LENGTH between statements
        self.values_capped_at = limits.result_bytes  # and for the running one (cap_values)
        _lock_down(conn, limits)
        bounded_functions.install(conn, self, limits.result_bytes)
        conn.set_progress_handler(self._progress, PROGRESS_STEPS)
        conn.set_commit_hook(self._refuse_commit)

    @contextlib.contextmanager
    def request(self, deadline: float | None) -> Iterator[None]:
        """The span of one request, with the client's deadline (monotonic), if it set one."""
        self._deadline = float("inf") if deadline is None else deadline
        watchdog.watch(self)
        try:
            yield
        finally:
            watchdog.unwatch(self)
            with self._clock:
                self._deadline = self._stop_at = float("inf")
                self._commit_by_deadline = False

    def commit_by_deadline(self) -> None:
        """From here to the request's end, commit only before the client's deadline: past it, the commit
        hook turns COMMIT into a rollback (apsw.ConstraintError, explained by `fault`)."""
        self._commit_by_deadline = True

    @contextlib.contextmanager
    def inline(self, cpu_seconds: float, value_bytes: int) -> Iterator[None]:
        """An attempt on the event loop, which gives up (`gave_up` set) once it has used `cpu_seconds` of
        the thread's CPU time or makes a value over `value_bytes` (one VM step, however long), and gets
        SQLITE_BUSY at once instead of waiting for another connection's lock; either way the caller runs
        it again on a worker thread. CPU time, not the wall clock: a process descheduled on a busy
        machine must not give up work it has nearly done."""
        conn = self._conn()
        self.gave_up = False
        self._inline_until = time.thread_time() + cpu_seconds
        conn.set_busy_timeout(0)
        self._value_bytes = self.values_capped_at = min(value_bytes, self.limits.result_bytes)
        conn.limit(apsw.SQLITE_LIMIT_LENGTH, self._value_bytes)
        try:
            yield
        finally:
            self._inline_until = float("inf")
            conn.set_busy_timeout(BUSY_MS)
            self._value_bytes = self.values_capped_at = self.limits.result_bytes
            conn.limit(apsw.SQLITE_LIMIT_LENGTH, self._value_bytes)

    def cap_values(self, columns: int) -> None:
        """Before a statement returning `columns` columns runs (0: after it): cap each of its values at
        the result limit shared by its columns, so one row, which SQLite makes whole before handing it
        over and apsw copies whole, is never larger than a result may be (SQLITE_LIMIT_LENGTH also caps
        the rows the statement writes and every intermediate value)."""
        cap = max(1, self._value_bytes // columns) if columns > 1 else self._value_bytes
        if cap != self.values_capped_at:  # most statements return a column or none: no call
            self.values_capped_at = cap
            self._conn().limit(apsw.SQLITE_LIMIT_LENGTH, cap)

    def start_clock(self) -> None:
        """Start the clock for what runs next: the statement limit, or the client's deadline if sooner."""
        with self._clock:
            self.timed_out = None
            self._stop_at = min(time.monotonic() + self.limits.statement_seconds, self._deadline)

    def check(self) -> None:
        """For work inside one VM step (loot/shard/bounded_functions.py): stop it once past the stop time."""
        if time.monotonic() >= self._stop_at:
            self.timed_out = self._why(time.monotonic())
            raise apsw.InterruptError("interrupted")

    def interrupt_if_late(self, now: float) -> None:
        """The watchdog's look: interrupt the running statement if it is past its stop time."""
        with self._clock:
            if now < self._stop_at or self.timed_out is not None:
                return
            self.timed_out = self._why(now)
            conn = self._conn()
            if conn is not None:
                conn.interrupt()

    def check_deadline(self) -> None:
        """Refuse to start work the client has stopped waiting for."""
        if time.monotonic() >= self._deadline:
            raise Fault(grpc.StatusCode.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED",
                        "the client's deadline passed before the request could run")

    def fault(self, error: apsw.Error, **metadata: object) -> Fault:
        """The fault for a failed statement, saying why when SQLite refused it or a time limit stopped it."""
        if isinstance(error, apsw.TooBigError) and self._inline_until != float("inf"):
            self.gave_up = True  # the inline attempt's own, lower limit: the worker has the real one
        refusal = _sqlite_refusal(error)
        if refusal is not None and isinstance(error, (apsw.AuthError, apsw.SQLError)):
            return Fault(grpc.StatusCode.PERMISSION_DENIED, "NOT_AUTHORIZED", f"refused by the sandbox: {refusal}",
                         **metadata)
        if isinstance(error, apsw.TooBigError):
            return Fault(grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_BIG", _too_big(self.values_capped_at,
                                                                              self._value_bytes),
                         limit=self.values_capped_at, **metadata)
        if isinstance(error, apsw.NoMemError):
            return out_of_memory(**metadata)
        if isinstance(error, apsw.FullError) and self.full is not None:
            return self.full(**metadata)
        if isinstance(error, apsw.InterruptError) and self.timed_out:
            return Fault(grpc.StatusCode.DEADLINE_EXCEEDED, "INTERRUPTED", f"interrupted: {self.timed_out}", **metadata)
        if getattr(error, "extendedresult", None) == apsw.SQLITE_CONSTRAINT_COMMITHOOK and self.timed_out:
            return Fault(grpc.StatusCode.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED",
                         f"{self.timed_out}; rolled back, nothing applied", **metadata)
        return fault_from_sqlite(error, **metadata)

    def _progress(self) -> bool:
        if self._inline_until != float("inf") and time.thread_time() >= self._inline_until:
            self.gave_up = True
            return True
        now = time.monotonic()
        if now < self._stop_at:
            return False
        self.timed_out = self._why(now)
        return True

    def _refuse_commit(self) -> bool:
        if self._commit_by_deadline and time.monotonic() >= self._deadline:
            self.timed_out = "the client's deadline passed before the commit"
            return True
        return False

    def _why(self, now: float) -> str:
        return ("the client's deadline passed" if now >= self._deadline
                else f"the statement ran longer than {self.limits.statement_seconds:g} s")


def out_of_memory(**metadata: object) -> Fault:
    limit = sqlite_heap_limit()
    return Fault(grpc.StatusCode.RESOURCE_EXHAUSTED, "OUT_OF_MEMORY",
                 f"the statement needed more memory than the shard allows (SQLite's heap is capped at {limit} bytes, "
                 "shared by every database of the shard); use smaller values, fewer rows at once, or retry later",
                 limit=limit, **metadata)


def _too_big(cap: int, value_bytes: int) -> str:
    if cap < value_bytes:
        return (f"a value or row of this statement exceeds {cap} bytes: its result columns share the "
                f"{value_bytes}-byte result limit; select fewer columns or smaller values")
    return f"a value or row exceeds {cap} bytes, the largest the shard makes"


def _sqlite_refusal(error: apsw.Error) -> str | None:
    message = str(error)
    for pattern, refusal in _SQLITE_REFUSALS:
        if pattern.search(message):
            return refusal
    return None


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
