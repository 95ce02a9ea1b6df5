"""The HTTP port's ASGI application: loot.v1.Database (Connect, gRPC-Web) behind CORS, the static page
at `/`, and a message with every refusal (never an empty body, a traceback or a 500)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import grpc
from connectrpc.errors import ConnectError

from loot.grpc_options import MAX_MESSAGE, MAX_METADATA
from loot.http.codecs import CODECS
from loot.http.cors import App, Origins, cors
from loot.http.responses import refuse
from loot.http.servicer import NOT_OVER_HTTP, DatabaseOverHttp
from loot.http.static_files import serve_static
from loot.v1 import database_pb2
from loot.v1.database_connect import DatabaseASGIApplication

log = logging.getLogger("loot.http")
SERVICE = database_pb2.DESCRIPTOR.services_by_name["Database"]
METHOD_PATHS = frozenset(f"/{SERVICE.full_name}/{method.name}" for method in SERVICE.methods)
STREAM_PATHS = frozenset(f"/{SERVICE.full_name}/{method.name}" for method in SERVICE.methods
                         if method.client_streaming or method.server_streaming)
# Content types of Connect's unary calls, which cannot reach a streaming method.
UNARY_CONTENT_TYPES = ("application/json", "application/proto")
# What connectrpc refuses before a call with an empty body, and what to say instead.
_EXPLAINED = {
    405: "call the methods with POST (docs/http.md)",
    415: "unsupported content type: send application/json or application/proto (Connect), "
         "application/grpc-web+proto (gRPC-Web) (docs/http.md)",
}


def http_app(handlers: Mapping[str, grpc.RpcMethodHandler], origins: Origins) -> App:
    """Serve `handlers` (the process's own loot.v1.Database gRPC method handlers, by method name)."""
    # No compression, as on the gRPC port: the router's CPU goes to calls (a proxy in front may compress).
    connect = DatabaseASGIApplication(DatabaseOverHttp(handlers), read_max_bytes=MAX_MESSAGE, codecs=CODECS,
                                      compressions=())

    async def app(scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["path"] in STREAM_PATHS and _content_type(scope).startswith(UNARY_CONTENT_TYPES):
            return await refuse(send, 501, "unimplemented", NOT_OVER_HTTP)
        if scope["path"] in METHOD_PATHS:
            try:
                return await connect(scope, receive, _explaining(send))
            except (ConnectError, OSError) as error:  # what connectrpc raises when the answer could not be sent
                return log.info("the client was gone before its answer: %s", error)
        if scope["method"] in ("GET", "HEAD"):
            return await serve_static(scope, send)
        await refuse(send, 404, "unimplemented", f"no method at {scope['path']}: this port serves "
                               f"{', '.join(sorted(METHOD_PATHS - STREAM_PATHS))} (docs/http.md)")

    return _bounded(cors(app, origins))


def _bounded(app: App) -> App:
    """`app` for HTTP requests whose headers fit gRPC's metadata bound; lifespan answered, websockets refused."""

    async def bounded(scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            return await _lifespan(receive, send)
        if scope["type"] != "http":  # websockets: refused at the handshake
            return await send({"type": "websocket.close", "code": 1003})
        size = sum(len(key) + len(value) for key, value in scope["headers"])
        if size > MAX_METADATA:
            return await refuse(send, 431, "resource_exhausted", f"the request's headers are {size} bytes, "
                                          f"over the limit of {MAX_METADATA} (a token is at most 64 KiB)")
        await app(scope, receive, send)

    return bounded


def _content_type(scope: dict[str, Any]) -> str:
    return next((value.decode("latin-1") for key, value in scope["headers"] if key == b"content-type"), "")


async def _lifespan(receive: Callable, send: Callable) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            return await send({"type": "lifespan.shutdown.complete"})


def _explaining(send: Callable) -> Callable:
    """`send`, with a message in the empty bodies of the refusals connectrpc makes before a call."""
    explanation: str | None = None

    async def sending(message: dict) -> None:
        nonlocal explanation
        if message["type"] == "http.response.start" and message["status"] in _EXPLAINED:
            explanation = _EXPLAINED[message["status"]]
            message = {**message, "headers": [*message.get("headers", ()), (b"content-type", b"text/plain; charset=utf-8")]}
        elif message["type"] == "http.response.body" and explanation and not message.get("body"):
            message = {**message, "body": f"{explanation}\n".encode()}
            explanation = None
        await send(message)

    return sending
