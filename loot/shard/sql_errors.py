"""SQLite errors as Loot faults (docs/errors.md)."""

from __future__ import annotations

import re

import apsw
import grpc

from loot.status import Fault

_BY_KIND: list[tuple[type[apsw.Error], grpc.StatusCode, str]] = [
    (apsw.ConstraintError, grpc.StatusCode.FAILED_PRECONDITION, "CONSTRAINT_VIOLATION"),
    (apsw.AuthError, grpc.StatusCode.PERMISSION_DENIED, "NOT_AUTHORIZED"),
    (apsw.FullError, grpc.StatusCode.RESOURCE_EXHAUSTED, "DATABASE_FULL"),
    (apsw.TooBigError, grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_BIG"),
    (apsw.BusyError, grpc.StatusCode.UNAVAILABLE, "DATABASE_BUSY"),
    (apsw.InterruptError, grpc.StatusCode.DEADLINE_EXCEEDED, "INTERRUPTED"),
    (apsw.BindingsError, grpc.StatusCode.INVALID_ARGUMENT, "BAD_PARAMETERS"),
    (apsw.SQLError, grpc.StatusCode.INVALID_ARGUMENT, "SQL_ERROR"),
    (apsw.MismatchError, grpc.StatusCode.FAILED_PRECONDITION, "DATATYPE_MISMATCH"),
    (apsw.RangeError, grpc.StatusCode.INVALID_ARGUMENT, "BAD_PARAMETERS"),
]


def fault_from_sqlite(error: apsw.Error, **metadata: object) -> Fault:
    message = sqlite_message(error)
    for kind, code, reason in _BY_KIND:
        if isinstance(error, kind):
            return Fault(code, reason, message, **metadata)
    return Fault(grpc.StatusCode.INTERNAL, "SQLITE_ERROR", message, **metadata)


def sqlite_message(error: apsw.Error) -> str:
    """SQLite's own words, without apsw's class name in front."""
    return str(error).removeprefix(f"{type(error).__name__}: ")


_QUOTED_NAME = re.compile(r'"[^"]*"')


def quotes_a_value(error: apsw.Error) -> bool:
    """Whether SQLite's message quotes a value: `'...'` (its %Q), as JSON path errors do, as opposed to
    the SQL text and names it quotes `"..."` in syntax errors."""
    return "'" in _QUOTED_NAME.sub("", str(error))
