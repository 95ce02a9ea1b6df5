"""Running a request on one open database, its phases top-down (docs/shard.md#requests):

    create            the database is new: the shard's storage made it from a template (storage.py)
    schema            the token's schema claim, applied privileged in its own transaction (`apply_schema`)
    BEGIN IMMEDIATE   the request's one transaction (`transaction`)
    before            privileged SQL from the token
    the request       each statement under the token's filters and rules, or the privileged `instead`
    after             privileged SQL from the token
    COMMIT            refused past the client's deadline, so a late answer never hides a commit
    destroy           if the token asks, once all of it succeeded

Any failure inside the transaction rolls all of it back; `run_inline` is the same run for short
reads, tried on the event loop (see `Databases.run`). Policy lives in loot/shard/access (its
enforcer owns the connection's authorizer and rewrites each statement); the sandbox
(loot/shard/sandbox.py) adds the limits and the clock.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import apsw
import grpc

from loot.internal.v1 import shard_pb2
from loot.status import Fault
from loot.v1 import database_pb2 as pb
from loot.values import from_value, to_value
from loot.shard import schema, value_work
from loot.shard.access.enforcer import Enforcer, for_connection
from loot.shard.sql_errors import fault_from_sqlite
from loot.byte_lru import ByteLRU
from loot.shard.databases import RunOnWorker
from loot.shard.limits import Limits
from loot.shard.sandbox import Sandbox, out_of_memory
from loot.shard.storage import OpenDatabase

T = TypeVar("T")


# How much a request may do on the event loop before it gives up for a worker thread (every other
# call on the shard waits while it runs): 1 ms of CPU time (a warm point select takes 50-100 µs), no
# value over 64 KiB (making one is a single VM step, which the progress handler cannot interrupt),
# and SQL short enough to parse quickly (parsing runs no VM step either).
INLINE_CPU_SECONDS = 0.001
INLINE_VALUE_BYTES = 64 * 1024
INLINE_SQL_CHARS = 4096
# SQL texts seen to write (whether a statement writes is a property of its text): a request with one of
# them goes straight to a worker, skipping an attempt on the event loop that would set up its transaction
# and prepare the statement only to give up at it. Bounded: texts are at most INLINE_SQL_CHARS.
_WRITERS: ByteLRU[str, bool] = ByteLRU(1024 * (1024 + 64), size=lambda sql, _: len(sql) + 64, max_entries=1024)


@dataclass
class Outcome:
    results: list[pb.Result]
    schema_changes: list[str]
    destroyed: bool = False


_ROW_FRAMING = 6  # a row's tag and length in its Result


@dataclass
class Budget:
    """The result-size limit, spent across the request's statements."""

    limit: int
    spent: int = field(default=0)

    def spend(self, size: int, index: int) -> None:
        self.spent += size
        if self.spent > self.limit:
            raise self._exceeded(index)

    def check_values(self, row: tuple[Any, ...], index: int) -> None:
        """Refuse a row whose text and blob values alone overrun the budget, before copying any of them
        (their lengths never exceed their size in the response, so no result that fits is refused)."""
        size = self.spent
        for value in row:
            if isinstance(value, (str, bytes)):
                size += len(value)
        if size > self.limit:
            raise self._exceeded(index)

    def _exceeded(self, index: int) -> Fault:
        return Fault(grpc.StatusCode.RESOURCE_EXHAUSTED, "RESULT_TOO_LARGE",
                     f"the result exceeds {self.limit} bytes; select fewer rows or columns, or page with LIMIT",
                     statement_index=index, limit=self.limit)


def check_request(statements: Sequence[pb.Statement], limits: Limits) -> None:
    """Refuse requests past the size limits before touching the database."""
    if len(statements) > limits.batch_statements:
        raise Fault(grpc.StatusCode.INVALID_ARGUMENT, "TOO_MANY_STATEMENTS",
                    f"a batch holds at most {limits.batch_statements} statements, not {len(statements)}",
                    limit=limits.batch_statements)
    for index, statement in enumerate(statements):
        sql = statement.sql
        if len(sql) > limits.sql_bytes or (len(sql) * 4 > limits.sql_bytes and len(sql.encode()) > limits.sql_bytes):
            raise Fault(grpc.StatusCode.INVALID_ARGUMENT, "SQL_TOO_LONG",
                        f"statement {index} is longer than {limits.sql_bytes} bytes", statement_index=index,
                        limit=limits.sql_bytes)
        if max(len(statement.params), len(statement.named_params)) > limits.parameters:
            raise Fault(grpc.StatusCode.INVALID_ARGUMENT, "TOO_MANY_PARAMETERS",
                        f"statement {index} has more than {limits.parameters} parameters", statement_index=index,
                        limit=limits.parameters)


def run(database: OpenDatabase, context: shard_pb2.Context, statements: Sequence[pb.Statement],
        deadline: float | None, reads_only: bool = False) -> Outcome:
    """Run the request; `deadline` (monotonic) is the client's, if it set one; `reads_only`: raise
    RunOnWorker before a statement that is not read-only."""
    sandbox = database.sandbox
    with sandbox.request(deadline):
        sandbox.check_deadline()
        changes = _schema_phase(database, context.schema, reads_only)
        budget = Budget(sandbox.limits.result_bytes)

        def run_statements(guard: Enforcer) -> list[pb.Result]:
            results = [run_one(database, guard, statement, index, context.instead, budget, reads_only)
                       for index, statement in enumerate(statements)]
            sandbox.start_clock()  # `after` gets a time limit of its own
            return results

        sandbox.check_deadline()  # the schema phase may have used it up
        sandbox.start_clock()  # for `before`
        sandbox.commit_by_deadline()
        try:
            results = transaction(database.conn, claims_json=context.claims_json, readonly=context.readonly,
                                  before=context.before, after=context.after, statements=run_statements,
                                  reads_only=reads_only)
        except (apsw.ConstraintError, apsw.InterruptError) as error:  # COMMIT refused or interrupted: rolled back
            if not sandbox.timed_out:
                raise
            raise sandbox.fault(error) from None
    if context.destroy:
        database.destroy()
    return Outcome(results, changes, destroyed=context.destroy)


def transaction(conn: apsw.Connection, *, claims_json: str, readonly: bool, before: str, after: str,
                statements: Callable[[Enforcer], T], reads_only: bool = False) -> T:
    """BEGIN, `before`, `statements(access)`, `after`, COMMIT: one transaction, all or nothing.
    `reads_only` (statements that give up before writing): a read transaction, which takes no write lock."""
    access = for_connection(conn)
    with access.request(claims_json, readonly):
        begin(access, before, "BEGIN" if reads_only else "BEGIN IMMEDIATE")
        try:
            result = statements(access)
            commit(access, after)
        except BaseException:
            rollback(access)
            raise
    return result


# The phases of `transaction`, one by one for an interactive transaction (loot/shard/transaction_phases.py),
# each inside the request's `access.request(...)`.

def begin(access: Enforcer, before: str, statement: str = "BEGIN IMMEDIATE") -> None:
    """BEGIN IMMEDIATE (or `statement`), then `before`; rolled back if `before` fails."""
    access.control(statement)
    try:
        access.refresh()
        if before:
            _privileged_script(access, before, "before")
            access.refresh()  # `before` may have changed the policy
    except BaseException:
        rollback(access)
        raise


def commit(access: Enforcer, after: str) -> None:
    """`after`, then COMMIT; the caller rolls back if either fails."""
    if after:
        _privileged_script(access, after, "after")
    access.control("COMMIT")


def rollback(access: Enforcer) -> None:
    """ROLLBACK, unless SQLite already rolled the transaction back itself."""
    if not access.conn.get_autocommit():
        access.control("ROLLBACK")


def _privileged_script(access: Enforcer, script: str, claim: str) -> None:
    try:
        access.run_script(script)
    except apsw.Error as error:
        raise access.fault(error, claim=claim) or fault_from_sqlite(error, claim=claim)


def run_inline(database: OpenDatabase, context: shard_pb2.Context, statements: Sequence[pb.Statement],
               deadline: float | None) -> Outcome:
    """`run` on the event loop, for reads: raises RunOnWorker, having changed nothing, for what may write
    (privileged claims, a schema to apply, destroy, a statement that is not read-only), wait for a lock
    or run long (INLINE_*). The rest is `run` itself: the same access control, limits and clock, in a read
    transaction: in WAL mode it sees the last commit and waits for no writer, so BUSY is rare (a recovery)."""
    if not _may_run_inline(database, context, statements):
        raise RunOnWorker
    sandbox = database.sandbox
    try:
        with sandbox.inline(INLINE_CPU_SECONDS, INLINE_VALUE_BYTES):
            return run(database, context, statements, deadline, reads_only=True)
    except apsw.BusyError as error:
        raise RunOnWorker from error
    except (Fault, apsw.Error) as error:
        if sandbox.gave_up:
            raise RunOnWorker from error
        raise


def _may_run_inline(database: OpenDatabase, context: shard_pb2.Context, statements: Sequence[pb.Statement]) -> bool:
    privileged = context.before or context.after or context.instead or context.destroy
    short = sum(len(statement.sql) for statement in statements) <= INLINE_SQL_CHARS
    return (short and not privileged and not database.creation_changes
            and not any(_WRITERS.get(statement.sql) for statement in statements))


def _schema_phase(database: OpenDatabase, claim: str, reads_only: bool) -> list[str]:
    """apply_schema; for reads only, just the check that it has nothing to do (or RunOnWorker)."""
    if not reads_only:
        return apply_schema(database, claim)
    if schema.unchanged(database.conn, claim):
        return []
    raise RunOnWorker


def apply_schema(database: OpenDatabase, claim: str) -> list[str]:
    """The schema phase: privileged, in its own transaction, before the request's."""
    return database.take_creation_changes() + for_connection(database.conn).apply_schema(claim)


def run_one(database: OpenDatabase, guard: Enforcer, statement: pb.Statement, index: int, instead: str,
             budget: Budget, reads_only: bool) -> pb.Result:
    """One statement of the request, or the privileged `instead` bound to its parameters."""
    conn, sandbox = database.conn, database.sandbox
    tracer = _OneStatement(reads_only, sandbox)
    cursor = conn.cursor()
    cursor.exec_trace = tracer
    before = conn.total_changes()
    result = pb.Result()
    sandbox.start_clock()
    try:
        with guard.privileged() if instead else contextlib.nullcontext(), guard.statement(instead or statement.sql) as sql:
            bindings = _bindings(statement, index)
            if not instead and value_work.may_be_costly(statement.sql):
                value_work.check(conn, sql, bindings, sandbox.limits.value_operations, index, guard.compiled_for)
            cursor.execute(sql, bindings, can_cache=database.kept.may_keep(conn, sql))
            tracer.describe(cursor, sql, bindings)
            for row in cursor:
                budget.check_values(row, index)
                message = pb.Row(values=[to_value(value) for value in row])
                budget.spend(message.ByteSize() + _ROW_FRAMING, index)  # what the row takes in the response
                result.rows.append(message)
    except RunOnWorker:
        if not tracer.readonly:
            _WRITERS.put(statement.sql, True)
        raise
    except apsw.ExecTraceAbort:
        raise Fault(grpc.StatusCode.INVALID_ARGUMENT, "MULTIPLE_STATEMENTS",
                    "Execute runs exactly one statement; send several with Batch", statement_index=index)
    except KeyError as missing:
        raise Fault(grpc.StatusCode.INVALID_ARGUMENT, "BAD_PARAMETERS",
                    f"no value for the named parameter {missing.args[0]!r}", statement_index=index)
    except apsw.Error as error:
        raise guard.fault(error, statement_index=index) or sandbox.fault(error, statement_index=index)
    except MemoryError:  # Python's side of a row (a process limit reached): the shard lives on
        raise out_of_memory(statement_index=index) from None
    finally:
        cursor.close(force=True)
        sandbox.cap_values(0)
    if tracer.count == 0:
        raise Fault(grpc.StatusCode.INVALID_ARGUMENT, "EMPTY_STATEMENT", "the statement is empty", statement_index=index)
    result.columns.extend(pb.Column(name=name, decltype=decltype or "") for name, decltype in tracer.columns)
    result.rows_read = len(result.rows)
    result.rows_written = conn.total_changes() - before
    if not tracer.readonly:
        result.last_insert_rowid = conn.last_insert_rowid()
    return result


def _bindings(statement: pb.Statement, index: int) -> Sequence[Any] | dict[str, Any]:
    if statement.params and statement.named_params:
        raise Fault(grpc.StatusCode.INVALID_ARGUMENT, "BAD_PARAMETERS", "use positional or named parameters, not both",
                    statement_index=index)
    if statement.named_params:
        return {name.lstrip(":@$"): from_value(value) for name, value in statement.named_params.items()}
    return [from_value(value) for value in statement.params]


class _OneStatement:
    """exec_trace hook: remembers the statement's shape and refuses a second statement;
    with `reads_only`, raises RunOnWorker before a statement that may write."""

    def __init__(self, reads_only: bool, sandbox: Sandbox) -> None:
        self.reads_only = reads_only
        self.sandbox = sandbox
        self.count = 0
        self.columns: tuple[tuple[str, str | None], ...] = ()
        self.readonly = True

    def __call__(self, cursor: apsw.Cursor, sql: str, bindings: Any) -> bool:
        if not cursor.has_vdbe:  # only whitespace or comments, e.g. after a trailing ';'
            return True
        self.count += 1
        if self.count > 1:
            return False
        self.readonly = cursor.is_readonly
        if self.reads_only and not self.readonly:
            raise RunOnWorker
        # Before the first step, so no row can outgrow a result; a statement prepared before a schema
        # change may count its old columns here, which caps its values a little less. Not through
        # `cursor.description`: apsw would keep that stale answer for `describe` after the step.
        self.sandbox.cap_values(len(cursor.get_description()))
        return True

    def describe(self, cursor: apsw.Cursor, sql: str, bindings: Any) -> None:
        """The result's columns, read after `cursor.execute` ran the statement's first step.

        A statement the cache prepared before a schema change (a claim adding a column,
        the TEMP views rebuilt) describes the old columns until that step prepares it again.
        A statement that finished without a row can no longer be described: its prepared
        copy, back in the cache, is described without running it.
        """
        if self.count == 0:
            return
        try:
            description = cursor.description
        except apsw.ExecutionCompleteError:
            description = _prepared_description(cursor.connection, sql, bindings)
        self.columns = tuple((column[0], column[1]) for column in description)


def _prepared_description(conn: apsw.Connection, sql: str, bindings: Any) -> tuple:
    """The description of `sql`'s first statement, taken from the statement cache; nothing runs."""
    found: list[tuple] = []

    def first(cursor: apsw.Cursor, *_: Any) -> bool:
        if not cursor.has_vdbe:
            return True
        found.append(cursor.description)
        return False

    cursor = conn.cursor()
    cursor.exec_trace = first
    try:
        cursor.execute(sql, bindings)
    except apsw.ExecTraceAbort:
        pass
    finally:
        cursor.close(force=True)
    return found[0] if found else ()
