"""Errors as gRPC statuses with a google.rpc.ErrorInfo detail (docs/errors.md).

Servers raise `Fault` anywhere below a servicer method; `guard` turns it into
the status the client sees. Clients read the detail back with `error_info`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

DOMAIN = "loot"
log = logging.getLogger("loot")


class Fault(Exception):
    """A request failed for a reason the client should hear about."""

    def __init__(self, code: grpc.StatusCode, reason: str, message: str, **metadata: Any):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.metadata = {k: str(v) for k, v in metadata.items()}

    def status(self) -> grpc.Status:
        return rpc_status.to_status(self.status_message())

    def status_message(self) -> status_pb2.Status:
        return status_message(self.code, self.reason, self.message, self.metadata)


def status_message(code: grpc.StatusCode, reason: str, message: str,
                   metadata: Mapping[str, str] = {}) -> status_pb2.Status:
    """The google.rpc.Status a call fails with: code, message and an ErrorInfo detail."""
    info = error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=dict(metadata))
    detail = any_pb2.Any()
    detail.Pack(info)
    return status_pb2.Status(code=code.value[0], message=message, details=[detail])


def rich_status(code: grpc.StatusCode, reason: str, message: str, metadata: Mapping[str, str] = {}) -> grpc.Status:
    return rpc_status.to_status(status_message(code, reason, message, metadata))


_INTERNAL = status_message(grpc.StatusCode.INTERNAL, "INTERNAL", "internal error; the server log has details")


def failure_status(error: Exception, where: str) -> status_pb2.Status:
    """What a servicer method raising `error` ends with: a Fault's own status; a bug is logged
    (call from the `except` block) and becomes INTERNAL."""
    if isinstance(error, Fault):
        return error.status_message()
    log.exception("internal error in %s", where)
    return _INTERNAL


def error_info(error: grpc.RpcError) -> error_details_pb2.ErrorInfo | None:
    """The ErrorInfo detail of a failed call, if the server sent one."""
    return status_info(rpc_status.from_call(error))


def status_info(status: status_pb2.Status | None) -> error_details_pb2.ErrorInfo | None:
    """The ErrorInfo detail of a google.rpc.Status, if it has one."""
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    return None


async def abort(context: grpc.aio.ServicerContext, status: grpc.Status) -> None:
    """End the call with `status`, keeping the trailing metadata already set on it (a router's request id)."""
    await context.abort(status.code, status.details, (*context.trailing_metadata(), *status.trailing_metadata))


Handler = TypeVar("Handler", bound=Callable[..., Awaitable[Any]])


def guard(method: Handler) -> Handler:
    """Wrap an async servicer method: Fault -> its status; a bug -> INTERNAL, logged."""

    @functools.wraps(method)
    async def wrapper(self, request, context: grpc.aio.ServicerContext):
        try:
            return await method(self, request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as error:
            await abort(context, rpc_status.to_status(failure_status(error, method.__qualname__)))

    return wrapper  # type: ignore[return-value]
