"""CORS for the HTTP port: which web pages' scripts may call it (docs/http.md, "Browsers").

A request without an `Origin` header (curl, servers, the SDK) is not a browser's cross-origin call
and passes. A page's own origin (the port's own scheme://host:port) always may. Other origins must
match a configured pattern: an exact origin, `scheme://host:*` (any port of that host), or `*`.
A disallowed origin is refused before the call runs: its preflight with 403, its request with a
Connect `permission_denied`, each saying which setting opens it.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from loot.http.responses import respond, refuse

Scope = dict[str, Any]
App = Callable[[Scope, Callable, Callable], Awaitable[None]]
# Loopback pages: any port of 127.0.0.1, localhost and [::1], over http or https.
LOCAL_ORIGINS = ("http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*",
                 "https://127.0.0.1:*", "https://localhost:*", "https://[::1]:*")
ALLOWED_HEADERS = ("authorization", "content-type", "connect-protocol-version", "connect-timeout-ms",
                   "connect-accept-encoding", "connect-content-encoding", "grpc-timeout", "x-grpc-web",
                   "x-user-agent", "x-request-id")
# What a client script needs to read: gRPC-Web's status, and the request id (a Connect unary reply's trailers
# are `trailer-` headers).
EXPOSED_HEADERS = ("grpc-status", "grpc-message", "grpc-status-details-bin", "trailer-x-request-id", "x-request-id")
MAX_AGE = 7200  # seconds a browser may reuse a preflight's answer (Chromium caps it at 7200)


class Origins:
    """The allowed origin patterns."""

    def __init__(self, patterns: Iterable[str]):
        self.patterns = tuple(patterns)
        self._any = "*" in self.patterns
        exact = [re.escape(p) for p in self.patterns if not p.endswith(":*") and p != "*"]
        ports = [re.escape(p[:-2]) + r"(?::\d{1,5})?" for p in self.patterns if p.endswith(":*")]
        self._match = re.compile(f"(?:{'|'.join(exact + ports)})\\Z") if exact or ports else None

    def allow(self, origin: str) -> bool:
        return self._any or (self._match is not None and self._match.match(origin) is not None)


def origin_patterns(value: Any) -> list[str]:
    """A `--cors-origin` setting: comma-separated text, a TOML list, or (the flag repeated) a list of either."""
    items = value if isinstance(value, list) else [value]
    patterns = [p.strip() for item in items for p in (origin_patterns(item) if isinstance(item, list)
                                                       else str(item).split(",")) if p.strip()]
    for pattern in patterns:
        if pattern != "*" and not re.fullmatch(r"https?://[^/\s]+", pattern):
            raise ValueError(f"{pattern!r} is not an origin (scheme://host[:port], scheme://host:*, or *)")
    return patterns


def cors(app: App, origins: Origins) -> App:
    """`app` behind the CORS check."""

    async def with_cors(scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await app(scope, receive, send)
        origin = _header(scope, b"origin")
        if origin is None:
            return await app(scope, receive, send)
        allowed = origin == _own_origin(scope) or origins.allow(origin)
        preflight = scope["method"] == "OPTIONS" and _header(scope, b"access-control-request-method") is not None
        if preflight:
            return await _answer_preflight(send, origin, allowed)
        if not allowed:
            return await _refuse(send, origin)
        await app(scope, receive, _with_headers(send, _response_headers(origin)))

    return with_cors


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def _own_origin(scope: Scope) -> str | None:
    host = _header(scope, b"host")
    return f"{scope.get('scheme', 'http')}://{host}" if host else None


def _response_headers(origin: str) -> list[tuple[bytes, bytes]]:
    return [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin"),
            (b"access-control-expose-headers", ", ".join(EXPOSED_HEADERS).encode())]


def _with_headers(send: Callable, headers: Sequence[tuple[bytes, bytes]]) -> Callable:
    async def sending(message: dict) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), *headers]}
        await send(message)

    return sending


async def _answer_preflight(send: Callable, origin: str, allowed: bool) -> None:
    if not allowed:
        return await _refuse(send, origin)
    headers = [*_response_headers(origin),
               (b"access-control-allow-methods", b"GET, POST"),
               (b"access-control-allow-headers", ", ".join(ALLOWED_HEADERS).encode()),
               (b"access-control-max-age", str(MAX_AGE).encode())]
    await respond(send, 204, headers, b"")


async def _refuse(send: Callable, origin: str) -> None:
    await refuse(send, 403, "permission_denied",
                 f"origin {origin} may not call this port: allow it with --cors-origin (docs/http.md)", [(b"vary", b"Origin")])
