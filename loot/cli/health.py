"""`loot health`: a gRPC health probe for container healthchecks (exit 0 when SERVING)."""

from __future__ import annotations

import argparse
import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("address", nargs="?", help="host:port to probe (default 127.0.0.1:$LOOT_PORT, else :7070)")
    parser.add_argument("--service", default="", help="service name to ask about (default: the whole server)")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for an answer (default 3)")


def default_address() -> str:
    """Inside a container the probe runs with the server's own environment, so it finds its port there."""
    return f"127.0.0.1:{os.environ.get('LOOT_PORT') or 7070}"


def run(args: argparse.Namespace) -> None:
    address = args.address or default_address()
    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=args.service), timeout=args.timeout)
        except grpc.RpcError as error:
            sys.exit(f"loot: {address} is not healthy: {error.code().name} {error.details()}")
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(f"{address} {status}")
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        sys.exit(1)
