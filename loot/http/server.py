"""The HTTP port of a server (`--http-port`): Hypercorn in the process's own event loop.

Hypercorn, not Uvicorn: it speaks HTTP/2 over cleartext (h2c) as well as HTTP/1.1, and has ASGI
trailers. It runs in the same asyncio loop as the gRPC server, so an HTTP call reaches the same
handlers without a thread hop, and the native path pays nothing while the port is idle.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import socket
import ssl
from collections.abc import Mapping

import grpc
from hypercorn.asyncio import serve
from hypercorn.config import Config

from loot.grpc_options import MAX_METADATA
from loot.http.app import http_app
from loot.http.cors import LOCAL_ORIGINS, Origins, origin_patterns

log = logging.getLogger("loot.http")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class HttpPort:
    """The HTTP port serving a process's loot.v1.Database handlers until `stop`."""

    def __init__(self, handlers: Mapping[str, grpc.RpcMethodHandler], args: argparse.Namespace, who: str):
        self._app = http_app(handlers, allowed_origins(args))
        self._args = args
        self._who = who
        self._stopping = asyncio.Event()
        self._serving: asyncio.Task | None = None

    async def start(self) -> str:
        """Listen, serve in the background; return the URL (connections queue from here on)."""
        sock = _listen(self._args.host, self._args.http_port, self._args.reuse_port, self._who)
        port = sock.getsockname()[1]
        config = _config(self._args, f"fd://{sock.detach()}")
        self._serving = asyncio.create_task(serve(self._app, config, shutdown_trigger=self._stopping.wait))
        scheme = "https" if config.ssl_enabled else "http"
        host = f"[{self._args.host}]" if ":" in self._args.host else self._args.host
        return f"{scheme}://{host}:{port}"

    def stop(self) -> None:
        """Refuse new connections; calls in flight get the shutdown grace (Hypercorn's graceful timeout)."""
        self._stopping.set()

    async def stopped(self) -> None:
        if self._serving is not None:
            await self._serving


def allowed_origins(args: argparse.Namespace) -> Origins:
    """--cors-origin, or by default the loopback pages when the port listens on loopback only."""
    configured = origin_patterns(args.cors_origin) if args.cors_origin else []
    if not configured and args.host in _LOOPBACK:
        configured = list(LOCAL_ORIGINS)
    return Origins(configured)


def _listen(host: str, port: int, reuse_port: bool, who: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(1024)
    except OSError as error:
        sock.close()
        why = (f"port {port} is already in use; choose another with --http-port" if error.errno == errno.EADDRINUSE
               else os.strerror(error.errno) if error.errno else str(error))
        raise SystemExit(f"{who}: cannot serve HTTP on {host}:{port}: {why}") from None
    return sock


def _config(args: argparse.Namespace, bind: str) -> Config:
    config = Config()
    config.bind = [bind]
    config.errorlog = log
    config.accesslog = None  # calls are logged by the handlers, as native ones (loot.access)
    config.include_server_header = False
    config.graceful_timeout = args.shutdown_grace
    # Tokens of up to 64 KiB travel in a header. The app refuses headers over gRPC's metadata bound with a
    # message (loot/http/app.py); the server's own, bare refusal only comes past twice that.
    config.h11_max_incomplete_size = 2 * MAX_METADATA
    config.h2_max_header_list_size = 2 * MAX_METADATA
    if args.tls_cert and args.tls_key:  # the gRPC port's TLS settings (loot/tls.py)
        config.certfile, config.keyfile = args.tls_cert, args.tls_key
        if args.tls_client_ca:
            config.ca_certs, config.verify_mode = args.tls_client_ca, ssl.CERT_REQUIRED
    return config

