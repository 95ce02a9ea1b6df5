"""Typed errors for SDK users: every failed call is a LootError subclass.

    try:
        db.execute("INSERT INTO todos (owner) VALUES ('mallory')")
    except RuleViolation as error:
        print(error.table, error.rule)
"""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2, status_pb2

from loot.status import error_info, status_info


class LootError(Exception):
    """A failed Loot call: gRPC status, stable reason and metadata (docs/errors.md)."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str, *, code: grpc.StatusCode | None = None, reason: str = "",
                 metadata: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.reason = reason
        self.metadata = dict(metadata or {})

    def __str__(self) -> str:
        reason = f" [{self.reason}]" if self.reason else ""
        return f"{self.code.name}{reason}: {self.message}"


class Unauthenticated(LootError):
    """The token is missing, malformed, badly signed, expired or not yet valid."""
    code = grpc.StatusCode.UNAUTHENTICATED


class InvalidArgument(LootError):
    """Bad SQL, bad parameters, or a bad claim."""
    code = grpc.StatusCode.INVALID_ARGUMENT


class PermissionDenied(LootError):
    """The sandbox refused the statement, or it wrote under `readonly`."""
    code = grpc.StatusCode.PERMISSION_DENIED


class RuleViolation(PermissionDenied):
    """A rule in `_rules` did not hold; `.table` and `.rule` say which."""

    @property
    def table(self) -> str:
        return self.metadata.get("table", "")

    @property
    def rule(self) -> str:
        return self.metadata.get("rule", "")


class FailedPrecondition(LootError):
    """A constraint was violated, or the schema change was refused."""
    code = grpc.StatusCode.FAILED_PRECONDITION


class ConstraintViolation(FailedPrecondition):
    """UNIQUE, NOT NULL, CHECK or FOREIGN KEY."""


class SchemaRefused(FailedPrecondition):
    """The schema claim would lose or rewrite data; nothing of it was applied."""


class ResourceExhausted(LootError):
    """A limit was hit (result size, database size, queue depth): retry later or ask for less."""
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class DeadlineExceeded(LootError):
    """The statement ran past its time limit or the call's deadline. With a `reason` (Loot's answer)
    nothing was applied; with none, the client library's own deadline fired and it may have been
    (docs/errors.md, Deadlines)."""
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Unavailable(LootError):
    """The router or the database's shard is unreachable; safe to retry."""
    code = grpc.StatusCode.UNAVAILABLE


class OutcomeUnknown(LootError):
    """The shard went away, the router's deadline passed while the shard ran the call, or the router
    stopped with the call forwarded: it may or may not have been applied."""
    code = grpc.StatusCode.UNKNOWN


class Aborted(LootError):
    """A transaction was rolled back by Loot (a limit, a fence, its shard lost): nothing of it was applied;
    retry it (docs/transactions.md)."""
    code = grpc.StatusCode.ABORTED


class InternalError(LootError):
    """A bug in Loot: please report it."""
    code = grpc.StatusCode.INTERNAL


_BY_CODE: dict[grpc.StatusCode, type[LootError]] = {
    cls.code: cls for cls in (Unauthenticated, InvalidArgument, PermissionDenied, FailedPrecondition,
                              ResourceExhausted, DeadlineExceeded, Unavailable, OutcomeUnknown, Aborted,
                              InternalError)
}


def _refine(cls: type[LootError], reason: str, metadata: dict[str, str]) -> type[LootError]:
    if cls is PermissionDenied and "rule" in metadata:
        return RuleViolation
    if cls is FailedPrecondition and reason.startswith("SCHEMA"):
        return SchemaRefused
    if cls is FailedPrecondition and reason.startswith("CONSTRAINT"):
        return ConstraintViolation
    return cls


def from_rpc_error(error: grpc.RpcError) -> LootError:
    """The LootError for a failed gRPC call."""
    return _typed(error.code(), error.details(), error_info(error))


def from_status(status: status_pb2.Status) -> LootError:
    """The LootError for a google.rpc.Status (a statement's error inside a transaction)."""
    code = next((code for code in grpc.StatusCode if code.value[0] == status.code), grpc.StatusCode.UNKNOWN)
    return _typed(code, status.message, status_info(status))


def _typed(code: grpc.StatusCode, details: str | None, info: error_details_pb2.ErrorInfo | None) -> LootError:
    reason = info.reason if info else ""
    metadata = dict(info.metadata) if info else {}
    cls = _refine(_BY_CODE.get(code, LootError), reason, metadata)
    return cls(details or code.name, code=code, reason=reason, metadata=metadata)
