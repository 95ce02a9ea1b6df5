"""Errors as gRPC statuses with a google.rpc.ErrorInfo detail (SPEC §7).

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
        return rich_status(self.code, self.reason, self.message, self.metadata)


def rich_status(code: grpc.StatusCode, reason: str, message: str, metadata: Mapping[str, str] = {}) -> grpc.Status:
    info = error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=dict(metadata))
    detail = any_pb2.Any()
    detail.Pack(info)
    return rpc_status.to_status(status_pb2.Status(code=code.value[0], message=message, details=[detail]))


def error_info(error: grpc.RpcError) -> error_details_pb2.ErrorInfo | None:
    """The ErrorInfo detail of a failed call, if the server sent one."""
    status = rpc_status.from_call(error)
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
        except Fault as fault:
            await abort(context, fault.status())
        except grpc.aio.AbortError:
            raise
        except Exception:
            log.exception("internal error in %s", method.__qualname__)
            await abort(context, rich_status(grpc.StatusCode.INTERNAL, "INTERNAL", "internal error; the server log has details"))

    return wrapper  # type: ignore[return-value]
