"""Running a request on one open database (on a worker thread, or first as a
quick attempt on the event loop), in phases (SPEC §6):

    schema claim (own transaction, privileged)
    BEGIN → [before] → the request's SQL (sandboxed) → [after] → COMMIT
    destroy, if asked

Any failure inside the transaction rolls all of it back.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import apsw
import grpc

from loot.internal.v1 import shard_pb2
from loot.status import Fault
from loot.v1 import database_pb2 as pb
from loot.values import from_value, to_value
from shard import schema
from shard.databases import NeedsWorker
from shard.limits import Limits
from shard.sandbox import Sandbox
from shard.sql_errors import fault_from_sqlite
from shard.storage import OpenDatabase


# How long a quick attempt on the event loop may run before it gives up and goes to a worker thread.
QUICK_SECONDS = 0.002


@dataclass
class Outcome:
    results: list[pb.Result]
    schema_changes: list[str]
    destroyed: bool = False


@dataclass
class _Budget:
    """The result-size limit, spent across the request's statements."""

    limit: int
    spent: int = field(default=0)

    def spend(self, size: int, index: int) -> None:
        self.spent += size
        if self.spent > self.limit:
            raise Fault(grpc.StatusCode.RESOURCE_EXHAUSTED, "RESULT_TOO_LARGE",
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
        deadline: float | None, quick: bool = False) -> Outcome:
    """Run the request; `quick`: as a quick attempt on the event loop, which gives up (NeedsWorker,
    nothing applied) on anything that may write, touch the disk or take longer than QUICK_SECONDS."""
    if quick and not _may_be_quick(database, context):
        raise NeedsWorker
    sandbox = database.sandbox
    quick_until = time.monotonic() + QUICK_SECONDS if quick else None
    with sandbox.request(readonly=context.readonly, deadline=deadline, quick_until=quick_until):
        sandbox.check_deadline()
        changes = apply_schema(database, context.schema)
        # A quick attempt only reads (it gives up before a write), and one statement reads one snapshot
        # by itself: only a quick batch needs the transaction, for one snapshot across its statements.
        alone = quick and len(statements) == 1
        with contextlib.nullcontext() if alone else _transaction(database.conn, sandbox):
            budget = _Budget(sandbox.limits.result_bytes)
            results = [_run_one(database, statement, index, budget, quick) for index, statement in enumerate(statements)]
    if context.destroy:
        database.destroy()
    return Outcome(results, changes, destroyed=context.destroy)


def _may_be_quick(database: OpenDatabase, context: shard_pb2.Context) -> bool:
    """Only plain requests on a database whose schema is already in place: nothing privileged may write."""
    return (context.schema == database.applied_claim and not database.creation_changes and not context.destroy
            and not (context.before or context.after or context.instead))


def apply_schema(database: OpenDatabase, claim: str) -> list[str]:
    """The schema phase: privileged, in its own transaction, before the request's."""
    changes = database.take_creation_changes()
    if claim == database.applied_claim:
        return changes
    with database.sandbox.privileged(transactions=True):
        changes += schema.apply(database.conn, claim)
    database.applied_claim = claim
    return changes


@contextlib.contextmanager
def _transaction(conn: apsw.Connection, sandbox: Sandbox) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any failure (SQLite may have rolled back already)."""
    with sandbox.privileged(transactions=True):
        _control(conn, "BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        sandbox.stop_clock()
        with sandbox.privileged(transactions=True):
            _rollback(conn)
        raise
    sandbox.stop_clock()
    with sandbox.privileged(transactions=True):
        try:
            _control(conn, "COMMIT")
        except Fault:
            _rollback(conn)
            raise


def _control(conn: apsw.Connection, sql: str) -> None:
    try:
        conn.execute(sql)
    except apsw.Error as error:
        raise fault_from_sqlite(error)


def _rollback(conn: apsw.Connection) -> None:
    if not conn.get_autocommit():
        conn.execute("ROLLBACK")


def _run_one(database: OpenDatabase, statement: pb.Statement, index: int, budget: _Budget, quick: bool) -> pb.Result:
    conn, sandbox = database.conn, database.sandbox
    tracer = _OneStatement(quick)
    cursor = conn.cursor()
    cursor.exec_trace = tracer
    before = conn.total_changes()
    result = pb.Result()
    sandbox.start_statement()
    try:
        for row in cursor.execute(statement.sql, _bindings(statement, index)):
            budget.spend(_row_size(row), index)
            result.rows.append(pb.Row(values=[to_value(value) for value in row]))
            if quick and sandbox.past_quick_budget():
                raise NeedsWorker
    except apsw.ExecTraceAbort:
        if tracer.writes:
            raise NeedsWorker
        raise Fault(grpc.StatusCode.INVALID_ARGUMENT, "MULTIPLE_STATEMENTS",
                    "Execute runs exactly one statement; send several with Batch", statement_index=index)
    except KeyError as missing:
        raise Fault(grpc.StatusCode.INVALID_ARGUMENT, "BAD_PARAMETERS",
                    f"no value for the named parameter {missing.args[0]!r}", statement_index=index)
    except apsw.Error as error:
        if sandbox.quick_expired:
            raise NeedsWorker
        raise sandbox.fault(error, statement_index=index)
    finally:
        cursor.close(force=True)
    if tracer.count == 0:
        raise Fault(grpc.StatusCode.INVALID_ARGUMENT, "EMPTY_STATEMENT", "the statement is empty", statement_index=index)
    result.columns.extend(pb.Column(name=name, decltype=decltype or "") for name, decltype in tracer.columns)
    result.rows_read = len(result.rows)
    result.rows_written = conn.total_changes() - before
    if not tracer.readonly:
        result.last_insert_rowid = conn.last_insert_rowid()
    return result


def _row_size(row: tuple[Any, ...]) -> int:
    return sum(len(value) if isinstance(value, (str, bytes)) else 8 for value in row)


def _bindings(statement: pb.Statement, index: int) -> Sequence[Any] | dict[str, Any]:
    if statement.params and statement.named_params:
        raise Fault(grpc.StatusCode.INVALID_ARGUMENT, "BAD_PARAMETERS", "use positional or named parameters, not both",
                    statement_index=index)
    if statement.named_params:
        return {name.lstrip(":@$"): from_value(value) for name, value in statement.named_params.items()}
    return [from_value(value) for value in statement.params]


class _OneStatement:
    """exec_trace hook: remembers the statement's shape and refuses a second statement;
    in a quick attempt, stops before a statement that writes."""

    def __init__(self, quick: bool) -> None:
        self.quick = quick
        self.writes = False
        self.count = 0
        self.columns: tuple[tuple[str, str | None], ...] = ()
        self.readonly = True

    def __call__(self, cursor: apsw.Cursor, sql: str, bindings: Any) -> bool:
        if not cursor.has_vdbe:  # only whitespace or comments, e.g. after a trailing ';'
            return True
        self.count += 1
        if self.count > 1:
            return False
        self.columns = tuple((column[0], column[1]) for column in cursor.description)
        self.readonly = cursor.is_readonly
        self.writes = self.quick and not self.readonly
        return not self.writes
