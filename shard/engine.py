"""Running a request's statements on one connection (on a worker thread).

Per request (SPEC §6): apply the schema claim, then one transaction around
`before`, the request's statements (or `instead` in place of each), `after`;
any failure rolls the whole transaction back. Access control (SPEC §5) is
shard/access: the request's own SQL runs restricted, the claims' SQL privileged.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

import apsw
import grpc

from loot.internal.v1 import shard_pb2
from loot.status import Fault
from loot.v1 import database_pb2 as pb
from loot.values import from_value, to_value
from shard import access, schema
from shard.sql_errors import fault_from_sqlite


def run(conn: apsw.Connection, context: shard_pb2.Context, statements: Sequence[pb.Statement]) -> tuple[list[pb.Result], list[str]]:
    with access.for_connection(conn).schema_change(context.schema):
        changes = schema.apply(conn, context.schema)

    def run_statements(guard: access.Enforcer) -> list[pb.Result]:
        return [_run_one(conn, guard, statement, index, context.instead) for index, statement in enumerate(statements)]

    results = access.run_request(conn, claims_json=context.claims_json, readonly=context.readonly,
                                 before=context.before, after=context.after, statements=run_statements)
    return results, changes


def _run_one(conn: apsw.Connection, guard: access.Enforcer, statement: pb.Statement, index: int,
             instead: str) -> pb.Result:
    """One statement of the request, or the privileged `instead` bound to its parameters."""
    tracer = _OneStatement()
    cursor = conn.cursor()
    cursor.exec_trace = tracer
    before = conn.total_changes()
    result = pb.Result()
    try:
        with guard.privileged() if instead else nullcontext(), guard.statement(instead or statement.sql) as sql:
            for row in cursor.execute(sql, _bindings(statement)):
                result.rows.append(pb.Row(values=[to_value(value) for value in row]))
    except apsw.ExecTraceAbort:
        raise Fault(grpc.StatusCode.INVALID_ARGUMENT, "MULTIPLE_STATEMENTS",
                    "Execute runs exactly one statement; send several with Batch", statement_index=index)
    except apsw.Error as error:
        raise guard.fault(error, statement_index=index) or fault_from_sqlite(error, statement_index=index)
    if tracer.count == 0:
        raise Fault(grpc.StatusCode.INVALID_ARGUMENT, "EMPTY_STATEMENT", "the statement is empty", statement_index=index)
    result.columns.extend(pb.Column(name=name, decltype=decltype or "") for name, decltype in tracer.columns)
    result.rows_read = len(result.rows)
    result.rows_written = conn.total_changes() - before
    if not tracer.readonly:
        result.last_insert_rowid = conn.last_insert_rowid()
    return result


def _bindings(statement: pb.Statement) -> Sequence[Any] | dict[str, Any]:
    if statement.params and statement.named_params:
        raise Fault(grpc.StatusCode.INVALID_ARGUMENT, "BAD_PARAMETERS", "use positional or named parameters, not both")
    if statement.named_params:
        return {name.lstrip(":@$"): from_value(value) for name, value in statement.named_params.items()}
    return [from_value(value) for value in statement.params]


class _OneStatement:
    """exec_trace hook: remembers the statement's shape and refuses a second statement."""

    def __init__(self) -> None:
        self.count = 0
        self.columns: tuple[tuple[str, str | None], ...] = ()
        self.readonly = True

    def __call__(self, cursor: apsw.Cursor, sql: str, bindings: Any) -> bool:
        self.count += 1
        if self.count > 1:
            return False
        self.columns = tuple((column[0], column[1]) for column in cursor.description)
        self.readonly = cursor.is_readonly
        return True
