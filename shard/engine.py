"""Running a request's statements on one connection (on a worker thread).

Per request (SPEC §6): apply the schema claim, then one transaction around the
request's statements; any failure rolls the whole transaction back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import apsw
import grpc

from loot.internal.v1 import shard_pb2
from loot.status import Fault
from loot.v1 import database_pb2 as pb
from loot.values import from_value, to_value
from shard import schema
from shard.sql_errors import fault_from_sqlite


def run(conn: apsw.Connection, context: shard_pb2.Context, statements: Sequence[pb.Statement]) -> tuple[list[pb.Result], list[str]]:
    changes = schema.apply(conn, context.schema)
    conn.execute("BEGIN IMMEDIATE")
    try:
        results = [_run_one(conn, statement, index) for index, statement in enumerate(statements)]
        conn.execute("COMMIT")
    except BaseException:
        if not conn.get_autocommit():
            conn.execute("ROLLBACK")
        raise
    return results, changes


def _run_one(conn: apsw.Connection, statement: pb.Statement, index: int) -> pb.Result:
    tracer = _OneStatement()
    cursor = conn.cursor()
    cursor.exec_trace = tracer
    before = conn.total_changes()
    result = pb.Result()
    try:
        for row in cursor.execute(statement.sql, _bindings(statement)):
            result.rows.append(pb.Row(values=[to_value(value) for value in row]))
    except apsw.ExecTraceAbort:
        raise Fault(grpc.StatusCode.INVALID_ARGUMENT, "MULTIPLE_STATEMENTS",
                    "Execute runs exactly one statement; send several with Batch", statement_index=index)
    except apsw.Error as error:
        raise fault_from_sqlite(error, statement_index=index)
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
