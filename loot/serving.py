"""What routers and shards share as gRPC servers: options, health, reflection,
the "listening" line supervisors read, and graceful stop on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import Awaitable, Callable, Iterable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from loot.supervisor import follow_supervisor

# Tokens of up to 64 KiB travel in metadata (SPEC §2); results of up to 16 MiB in messages (SPEC §6).
MAX_METADATA = 80 * 1024
MAX_MESSAGE = 64 * 1024 * 1024
GRPC_OPTIONS = [
    ("grpc.max_metadata_size", MAX_METADATA),
    ("grpc.absolute_max_metadata_size", MAX_METADATA),
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.max_send_message_length", MAX_MESSAGE),
]
_LISTENING = re.compile(r"^loot (?P<role>\w+) (?P<name>\S+) listening on (?P<address>\S+)$")


def listening_line(role: str, name: str, address: str) -> str:
    return f"loot {role} {name} listening on {address}"


def parse_listening(line: str) -> tuple[str, str, str] | None:
    """(role, name, address) if `line` is a server's listening line."""
    match = _LISTENING.match(line.strip())
    return (match["role"], match["name"], match["address"]) if match else None


async def serve(
    server: grpc.aio.Server,
    *,
    role: str,
    name: str,
    host: str,
    port: int,
    services: Iterable[str],
    grace: float = 10.0,
    on_stop: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Start `server` with health and reflection, run until SIGTERM/SIGINT, stop gracefully."""
    follow_supervisor()
    services = list(services)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection([*services, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    for service in ["", *services]:
        await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    print(listening_line(role, name, f"{host}:{bound}"), flush=True)

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    await health_servicer.enter_graceful_shutdown()
    await server.stop(grace)
    if on_stop is not None:
        await on_stop()
