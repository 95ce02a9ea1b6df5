"""Warm point-select throughput through the shard's gRPC service, against a bare
grpc.aio server that returns the same response bytes without doing any work.

    python bench/point_select.py [--calls 20000] [--concurrency 32]

Target: ratio >= 0.7.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.shard_process import ShardProcess, channel, closed_loop, execute_request, raw_execute  # noqa: E402
from loot.secret import SECRET_HEADER  # noqa: E402
from loot.serving import GRPC_OPTIONS  # noqa: E402
from loot.values import to_value  # noqa: E402

SCHEMA = "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, score REAL)"
SELECT = execute_request("warm", "SELECT id, body, score FROM notes WHERE id = ?", [to_value(42)], SCHEMA)


async def serve_bare(response: bytes) -> None:
    """A grpc.aio server answering Execute with fixed bytes: the ceiling for any Python gRPC service."""
    async def execute(request: bytes, context) -> bytes:
        return response

    server = grpc.aio.server(options=GRPC_OPTIONS)
    handler = grpc.unary_unary_rpc_method_handler(execute)
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("loot.internal.v1.Shard", {"Execute": handler})])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"127.0.0.1:{port}", flush=True)
    await server.wait_for_termination()


async def measure(address: str, metadata, calls: int, concurrency: int) -> float:
    async with channel(address) as chan:
        execute = raw_execute(chan)
        for _ in range(200):  # warm up: connection, caches, the database itself
            await execute(SELECT, metadata=metadata)
        return await closed_loop(lambda i: execute(SELECT, metadata=metadata), calls, concurrency)


async def prepare(shard: ShardProcess) -> bytes:
    metadata = ((SECRET_HEADER, shard.secret),)
    async with channel(shard.address) as chan:
        execute = raw_execute(chan)
        insert = ("WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 1000) "
                  "INSERT INTO notes (body, score) SELECT 'note ' || n, n / 3.0 FROM c")
        await execute(execute_request("warm", insert, (), SCHEMA), metadata=metadata)
        return await execute(SELECT, metadata=metadata)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--bare-server", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server:
        asyncio.run(serve_bare(sys.stdin.buffer.read()))
        return
    with tempfile.TemporaryDirectory() as data:
        shard = ShardProcess(Path(data))
        try:
            response = asyncio.run(prepare(shard))
            assert response, "the point select returned nothing"
            shard_rate = asyncio.run(measure(shard.address, ((SECRET_HEADER, shard.secret),), args.calls, args.concurrency))
        finally:
            shard.stop()
    bare = subprocess.Popen([sys.executable, __file__, "--bare-server"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    bare.stdin.write(response)
    bare.stdin.close()
    try:
        address = bare.stdout.readline().decode().strip()
        bare_rate = asyncio.run(measure(address, (), args.calls, args.concurrency))
    finally:
        bare.terminate()
        bare.wait()
    print(f"point select, {args.calls} calls, {args.concurrency} in flight, response {len(response)} bytes")
    print(f"  shard service : {shard_rate:9.0f} calls/s")
    print(f"  bare grpc.aio : {bare_rate:9.0f} calls/s")
    print(f"  ratio         : {shard_rate / bare_rate:9.2f}  (target >= 0.70)")


if __name__ == "__main__":
    main()
