"""What the observability interceptor (request id, access log, metrics) costs per call.

Runs an in-process gRPC server on loopback, bare and observed in alternating rounds
(the best round of each counts, as the machine is shared), with the same trivial
unary method, and prints calls per second and the observed/bare ratio.
The access log goes to a null handler, as a real deployment's log I/O is not the
interceptor's cost.   Run: python bench/observability_overhead.py
"""

from __future__ import annotations

import asyncio
import logging
import time

import grpc

from loot.observability.interceptor import ObservabilityInterceptor

CALLS = 4000
ROUNDS = 4
CONCURRENCY = 16
METHOD = "/bench.Echo/Call"


async def echo(request: bytes, context) -> bytes:
    return request


def handlers() -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler("bench.Echo", {"Call": grpc.unary_unary_rpc_method_handler(echo)})


async def calls_per_second(interceptors: list) -> float:
    server = grpc.aio.server(interceptors=interceptors)
    server.add_generic_rpc_handlers((handlers(),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(METHOD)
        await call(b"warm-up")

        async def worker(count: int) -> None:
            for _ in range(count):
                await call(b"x" * 64)

        started = time.perf_counter()
        await asyncio.gather(*(worker(CALLS // CONCURRENCY) for _ in range(CONCURRENCY)))
        elapsed = time.perf_counter() - started
    await server.stop(None)
    return (CALLS // CONCURRENCY) * CONCURRENCY / elapsed


async def main() -> None:
    logging.getLogger("loot").addHandler(logging.NullHandler())
    logging.getLogger("loot").setLevel(logging.INFO)
    logging.getLogger("loot").propagate = False
    bare = observed = 0.0
    for _ in range(ROUNDS):
        bare = max(bare, await calls_per_second([]))
        observed = max(observed, await calls_per_second([ObservabilityInterceptor()]))
    print(f"bare:     {bare:8.0f} calls/s (baseline)")
    print(f"observed: {observed:8.0f} calls/s")
    print(f"ratio observed/bare: {observed / bare:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
