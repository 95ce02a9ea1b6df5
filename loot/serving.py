"""What routers and shards share as gRPC servers: options, operations flags,
health, reflection, metrics, the "listening" line supervisors read, and
graceful stop on SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import re
import signal
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from loot.observability import logs
from loot.observability.metrics import serve_metrics
from loot import tls
from loot.grpc_options import GRPC_OPTIONS
from loot.settings import add_config_flag, add_flag

# Routers ping shards every 10 s on their always-open Forward streams to notice a dead peer
# (loot/router/shards.py); by default gRPC answers pings more frequent than every 5 minutes with
# no data between them by closing the connection (GOAWAY "too_many_pings"), which breaks the
# streams and fails the calls on them.
SERVER_OPTIONS = GRPC_OPTIONS + [("grpc.http2.min_ping_interval_without_data_ms", 5_000)]
log = logging.getLogger("loot.serving")
_LISTENING = re.compile(r"^loot (?P<role>\w+) (?P<name>\S+) listening on (?P<address>\S+)$")
_METRICS = re.compile(r"^loot \w+ \S+ metrics on (?P<address>\S+)$")
_PUBLIC = re.compile(r"^loot \w+ \S+ public on (?P<address>\S+)$")
# (full method name, handler) -> the handler to serve instead; applied once, when the handler is registered.
HandlerWrap = Callable[[str, grpc.RpcMethodHandler], grpc.RpcMethodHandler]
_KINDS = {
    "unary_unary": grpc.unary_unary_rpc_method_handler,
    "unary_stream": grpc.unary_stream_rpc_method_handler,
    "stream_unary": grpc.stream_unary_rpc_method_handler,
    "stream_stream": grpc.stream_stream_rpc_method_handler,
}


def add_operations_flags(parser: argparse.ArgumentParser) -> None:
    """Flags every server takes: config file, metrics, logs, shutdown."""
    add_config_flag(parser)
    add_flag(parser, "--metrics-port", type=int,
             help="serve Prometheus metrics at http://HOST:PORT/metrics (0 = any free port; unset = off)")
    add_flag(parser, "--log-format", default="text", help="text or json (one object per line)")
    add_flag(parser, "--log-level", default="info", help="debug, info, warning or error")
    add_flag(parser, "--shutdown-grace", default=10.0, type=float,
             help="seconds that calls in flight get to finish after SIGTERM before they are cancelled")
    add_flag(parser, "--reuse-port", action="store_true",
             help="share the port with other processes started with this switch (SO_REUSEPORT: the kernel "
                  "spreads connections over them, e.g. several routers); without it a port in use is an error")
    tls.add_server_flags(parser)


def new_server(reuse_port: bool = False) -> grpc.aio.Server:
    """A gRPC server with Loot's limits. No interceptors: grpc.aio would run them on every call, so each
    server wraps its handlers once instead (observed, and on shards the cluster secret: add_servicer).
    gRPC sets SO_REUSEPORT unless told not to, which lets a second cluster start on a port in use and
    take calls meant for the first: a server owns its port unless `reuse_port` asks to share it."""
    return grpc.aio.server(options=[*SERVER_OPTIONS, ("grpc.so_reuseport", int(reuse_port))])


def with_behavior(handler: grpc.RpcMethodHandler, wrap: Callable) -> grpc.RpcMethodHandler:
    """`handler` of whichever kind, its behavior (the servicer method) replaced by `wrap(behavior)`."""
    for kind, build in _KINDS.items():
        behavior = getattr(handler, kind)
        if behavior is not None:
            return build(wrap(behavior), request_deserializer=handler.request_deserializer,
                         response_serializer=handler.response_serializer)
    raise ValueError("a method handler without a behavior")


class _Registrations:
    """Stands in for a server to generated `add_*Servicer_to_server` code: keeps what it registers."""

    def __init__(self) -> None:
        self.services: dict[str, dict[str, grpc.RpcMethodHandler]] = {}

    def add_generic_rpc_handlers(self, handlers) -> None:
        pass  # the same handlers, which generated code also registers by name just after

    def add_registered_method_handlers(self, service: str, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        self.services[service] = handlers


def add_servicer(server: grpc.aio.Server, add_to_server: Callable, servicer: object, wrap: HandlerWrap) -> None:
    """Register `servicer` the way its generated `add_to_server` would, each method's handler wrapped
    by `wrap` once: what a server interceptor does, without grpc.aio running it on every call."""
    registrations = _Registrations()
    add_to_server(servicer, registrations)
    if not registrations.services:  # older generated code: fail loudly rather than serve nothing
        raise ValueError(f"{add_to_server.__name__} registered no methods by name")
    for service, handlers in registrations.services.items():
        register(server, service, {name: wrap(f"/{service}/{name}", handler) for name, handler in handlers.items()})


def register(server: grpc.aio.Server, service: str, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
    """Serve `handlers` (method name -> handler) as `service`; registered by name too, as generated
    code does, so gRPC finds a call's handler without the generic lookup."""
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(service, handlers)])
    server.add_registered_method_handlers(service, handlers)


def _unwrapped(method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    return handler


def listening_line(role: str, name: str, address: str) -> str:
    return f"loot {role} {name} listening on {address}"


def parse_listening(line: str) -> tuple[str, str, str] | None:
    """(role, name, address) if `line` is a server's listening line."""
    match = _LISTENING.match(line.strip())
    return (match["role"], match["name"], match["address"]) if match else None


def _bind(server: grpc.aio.Server, args: argparse.Namespace, who: str, port: int | None = None) -> int:
    """Add the listening port (`args.port` unless given); exit saying why when it cannot be had (gRPC only
    says it failed)."""
    port = args.port if port is None else port
    address, credentials = f"{args.host}:{port}", tls.server_credentials(args)
    try:
        return server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
    except RuntimeError:
        raise SystemExit(f"{who}: cannot listen on {address}: {_bind_error(args.host, port)}") from None


def _bind_error(host: str, port: int) -> str:
    """Why binding `host:port` fails, found by trying it with a plain socket."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.create_server((host, port), family=family):
            return "gRPC could not bind it (run with GRPC_VERBOSITY=debug to see why)"
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            return (f"port {port} is already in use (another Loot cluster?); choose another with --port "
                    "(processes meant to share it: --reuse-port on each)")
        return os.strerror(error.errno) if error.errno else str(error)


def public_line(role: str, name: str, address: str) -> str:
    return f"loot {role} {name} public on {address}"


def parse_public(line: str) -> str | None:
    """The public API's host:port if `line` is a shard's public-port line."""
    match = _PUBLIC.match(line.strip())
    return match["address"] if match else None


@dataclass
class Beside:
    """A second server in the same process, on a port of its own (a shard's public port): started, told
    to stop and stopped with the main one, with health and reflection for its own services."""

    server: grpc.aio.Server
    port: int
    services: list[str]
    on_stopping: Callable[[], None]
    on_stop: Callable[[], Awaitable[None]]


def metrics_line(role: str, name: str, address: str) -> str:
    return f"loot {role} {name} metrics on {address}"


def parse_metrics(line: str) -> str | None:
    """The metrics endpoint's host:port if `line` is a server's metrics line."""
    match = _METRICS.match(line.strip())
    return match["address"] if match else None


async def serve(
    server: grpc.aio.Server,
    args: argparse.Namespace,
    *,
    role: str,
    name: str,
    services: Iterable[str],
    on_stop: Callable[[], Awaitable[None]] | None = None,
    on_stopping: Callable[[], None] | None = None,
    wrap_reflection: HandlerWrap = _unwrapped,
    beside: Beside | None = None,
) -> None:
    """Start `server` with health, reflection (its handler wrapped by `wrap_reflection`) and metrics;
    run until SIGTERM/SIGINT; then stop gracefully: report NOT_SERVING, `on_stopping` (end long-lived
    streams once their calls finish), refuse new calls, let calls in flight finish for up to
    `args.shutdown_grace` seconds, then `on_stop` (close databases, channels). `beside` is served alongside,
    stopped at the same time, its `on_stop` before ours."""
    logs.configure(args.log_format, args.log_level)
    services = list(services)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflected = reflection.aio.ReflectionServicer([*services, health.SERVICE_NAME, reflection.SERVICE_NAME])
    add_servicer(server, reflection_pb2_grpc.add_ServerReflectionServicer_to_server, reflected, wrap_reflection)
    who = f"loot {role}" if name == role else f"loot {role} {name}"
    bound = _bind(server, args, who)
    if beside is not None:
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, beside.server)
        reflection.enable_server_reflection([*beside.services, health.SERVICE_NAME, reflection.SERVICE_NAME],
                                            beside.server)
        beside_port = _bind(beside.server, args, who, beside.port)
        await beside.server.start()
    await server.start()
    if args.metrics_port is not None:
        print(metrics_line(role, name, serve_metrics(args.host, args.metrics_port)), flush=True)
    for service in ["", *services, *(beside.services if beside else ())]:
        await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    if beside is not None:  # before the listening line, which supervisors wait for
        print(public_line(role, name, f"{args.host}:{beside_port}"), flush=True)
    print(listening_line(role, name, f"{args.host}:{bound}"), flush=True)

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    log.info("stopping: refusing new calls, waiting up to %ss for calls in flight", args.shutdown_grace)
    await health_servicer.enter_graceful_shutdown()
    if on_stopping is not None:
        on_stopping()
    if beside is not None:
        beside.on_stopping()
        await asyncio.gather(server.stop(args.shutdown_grace), beside.server.stop(args.shutdown_grace))
        await beside.on_stop()
    else:
        await server.stop(args.shutdown_grace)
    if on_stop is not None:
        await on_stop()
    log.info("stopped")
