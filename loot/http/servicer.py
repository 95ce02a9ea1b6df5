"""loot.v1.Database over HTTP: each call runs the very handler the process registered on its gRPC server.

The handlers come as registered (observed: metrics, access log, request id; guarded: errors as
statuses), so an HTTP call is admitted, limited, routed, forwarded, counted and logged by the same
code as a native one. What the handler aborts with becomes a Connect error carrying the same
google.rpc.Status details (the ErrorInfo reason and metadata).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping

import grpc
from connectrpc.errors import ConnectError
from connectrpc.request import RequestContext
from google.rpc import status_pb2

from loot.http.call_context import HttpCallContext, metadata_from_headers
from loot.http.codecs import Serialized
from loot.http.errors import connect_error, fault

STATUS_DETAILS = "grpc-status-details-bin"
UNARY = ("Execute", "Batch", "Describe")
NOT_OVER_HTTP = ("Transaction is a bidirectional stream, which the HTTP port does not serve: use Batch "
                 "(one transaction) or the gRPC port (docs/http.md)")


class DatabaseOverHttp:
    """The generated `loot.v1.Database` Connect service, served by gRPC method handlers (method name -> handler,
    as registered on the gRPC server). Streaming methods answer `unimplemented`: HTTP/1.1 cannot carry them."""

    def __init__(self, handlers: Mapping[str, grpc.RpcMethodHandler]):
        missing = [method for method in UNARY if method not in handlers]
        if missing:
            raise ValueError(f"no handler for {', '.join(missing)}")
        self._handlers = handlers

    async def execute(self, request: bytes, ctx: RequestContext) -> Serialized:
        return await self._call("Execute", request, ctx)

    async def batch(self, request: bytes, ctx: RequestContext) -> Serialized:
        return await self._call("Batch", request, ctx)

    async def describe(self, request: bytes, ctx: RequestContext) -> Serialized:
        return await self._call("Describe", request, ctx)

    def transaction(self, requests: AsyncIterator[bytes], ctx: RequestContext) -> AsyncIterator[Serialized]:
        raise fault(grpc.StatusCode.UNIMPLEMENTED, "NOT_OVER_HTTP", NOT_OVER_HTTP)

    async def _call(self, method: str, request: bytes, ctx: RequestContext) -> Serialized:
        handler = self._handlers[method]
        context = _context(ctx)
        if handler.request_deserializer is not None:
            request = handler.request_deserializer(request)
        try:
            response = await handler.unary_unary(request, context)
        except grpc.aio.AbortError:
            raise _connect_error(context) from None
        finally:
            _copy_trailers(context, ctx)
        if handler.response_serializer is not None:
            response = handler.response_serializer(response)
        return Serialized(response, ctx.method.output)


def _context(ctx: RequestContext) -> HttpCallContext:
    timeout_ms = ctx.timeout_ms
    deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000
    return HttpCallContext(metadata_from_headers(list(ctx.request_headers.allitems())), deadline)


def _copy_trailers(context: HttpCallContext, ctx: RequestContext) -> None:
    """The handler's trailing metadata (the request id) as the response's trailers; the status details
    travel in the Connect error instead."""
    for key, value in context.trailing_metadata():
        if key != STATUS_DETAILS and isinstance(value, str):
            ctx.response_trailers[key] = value


def _connect_error(context: HttpCallContext) -> ConnectError:
    """What the handler aborted with: its google.rpc.Status, sent in the trailing metadata as gRPC does."""
    for key, value in context.trailing_metadata():
        if key == STATUS_DETAILS and isinstance(value, bytes):
            return connect_error(status_pb2.Status.FromString(value))
    code = context.code() or grpc.StatusCode.UNKNOWN
    return connect_error(status_pb2.Status(code=code.value[0], message=context.details))
