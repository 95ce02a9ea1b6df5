"""What observing a handler (request id, access log, metrics) costs per call.

Runs an in-process gRPC server and its client on loopback, bare and observed in
alternating rounds, with the same trivial unary method. It counts the process's CPU
time per call (client and server together), which other load on a shared machine
disturbs far less than wall time, takes the best round of each, and prints the
ratio observed/bare (1.0 = free).
The access log goes to a null handler, as a real deployment's log I/O is not the
observation's cost.   Run: python bench/observability_overhead.py
"""

from __future__ import annotations

import asyncio
import logging
import time

import grpc

from loot.observability.handlers import observed_handler
from loot.secret import SECRET_HEADER
from loot.shard.cluster_auth import ClusterSecret

CALLS = 4000
ROUNDS = 4
CONCURRENCY = 16
METHOD = "/bench.Echo/Call"
SECRET = "s" * 43


async def echo(request: bytes, context) -> bytes:
    return request


def unwrapped(method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    return handler


def observed_as(return_request_id: bool):
    return lambda method, handler: observed_handler(method, handler, return_request_id)


def as_a_shard(method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """As loot/shard/server.py wraps each handler: the cluster secret first, then observed."""
    return observed_handler(method, ClusterSecret(SECRET).guard(method, handler), False)


async def cpu_per_call(wrap) -> float:
    server = grpc.aio.server()
    handler = wrap(METHOD, grpc.unary_unary_rpc_method_handler(echo))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("bench.Echo", {"Call": handler}),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(METHOD)
        await call(b"warm-up", metadata=((SECRET_HEADER, SECRET),))

        async def worker(count: int) -> None:
            for _ in range(count):
                await call(b"x" * 64, metadata=((SECRET_HEADER, SECRET),))

        started = time.process_time()
        await asyncio.gather(*(worker(CALLS // CONCURRENCY) for _ in range(CONCURRENCY)))
        used = time.process_time() - started
    await server.stop(None)
    return used / ((CALLS // CONCURRENCY) * CONCURRENCY)


async def main() -> None:
    logging.getLogger("loot").addHandler(logging.NullHandler())
    logging.getLogger("loot").setLevel(logging.INFO)
    logging.getLogger("loot").propagate = False
    variants = {
        "bare (baseline)": unwrapped,
        "observed as a router (returns the request id)": observed_as(True),
        "observed as a shard": observed_as(False),
        "a shard's handler (cluster secret, observed)": as_a_shard,
    }
    best = {name: float("inf") for name in variants}
    for _ in range(ROUNDS):
        for name, wrap in variants.items():
            best[name] = min(best[name], await cpu_per_call(wrap))
    bare = best["bare (baseline)"]
    for name, cost in best.items():
        print(f"{name:48} {cost * 1e6:5.0f} µs CPU per call, ratio {cost / bare:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
