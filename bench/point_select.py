"""Warm point-select throughput through the shard's gRPC service, against a bare
grpc.aio server that returns the same response bytes without doing any work.

    python bench/point_select.py [--calls 5000] [--rounds 5] [--concurrency 32]

Target: ratio >= 0.7.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.shard_process import ShardProcess, channel, closed_loop, cpu_seconds, execute_request, raw_execute  # noqa: E402
from loot.secret import SECRET_HEADER  # noqa: E402
from loot.grpc_options import GRPC_OPTIONS  # noqa: E402
from loot.values import to_value  # noqa: E402

# Opened to every token (tables are closed by default: docs/access.md).
SCHEMA = ("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, score REAL); "
          "INSERT INTO _filters VALUES ('notes', 'all', 'true'); INSERT INTO _rules VALUES ('notes', 'write', 'all', 'true');")
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


async def measure(address: str, pid: int, metadata, calls: int, concurrency: int) -> tuple[float, float]:
    """(calls per second of wall time, calls per second of the server's own CPU time)."""
    async with channel(address) as chan:
        execute = raw_execute(chan)
        for _ in range(200):  # warm up: connection, caches, the database itself
            await execute(SELECT, metadata=metadata)
        cpu = cpu_seconds(pid)
        rate = await closed_loop(lambda i: execute(SELECT, metadata=metadata), calls, concurrency)
        return rate, calls / (cpu_seconds(pid) - cpu)


async def prepare(shard: ShardProcess) -> bytes:
    metadata = ((SECRET_HEADER, shard.secret),)
    async with channel(shard.address) as chan:
        execute = raw_execute(chan)
        insert = ("WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 1000) "
                  "INSERT INTO notes (body, score) SELECT 'note ' || n, n / 3.0 FROM c")
        await execute(execute_request("warm", insert, (), SCHEMA), metadata=metadata)
        return await execute(SELECT, metadata=metadata)


async def compare(shard: ShardProcess, bare: subprocess.Popen, bare_address: str, calls: int, concurrency: int,
                  rounds: int) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """Alternate the two servers round by round, so load from elsewhere on the machine hits both alike."""
    secret = ((SECRET_HEADER, shard.secret),)
    pairs = []
    for _ in range(rounds):
        pairs.append((await measure(shard.address, shard.process.pid, secret, calls, concurrency),
                      await measure(bare_address, bare.pid, (), calls, concurrency)))
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=5000, help="calls per round and server")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--bare-server", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server:
        asyncio.run(serve_bare(sys.stdin.buffer.read()))
        return
    with tempfile.TemporaryDirectory() as data:
        shard = ShardProcess(Path(data))
        bare = None
        try:
            response = asyncio.run(prepare(shard))
            assert response, "the point select returned nothing"
            bare = subprocess.Popen([sys.executable, __file__, "--bare-server"], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE)
            bare.stdin.write(response)
            bare.stdin.close()
            bare_address = bare.stdout.readline().decode().strip()
            pairs = asyncio.run(compare(shard, bare, bare_address, args.calls, args.concurrency, args.rounds))
        finally:
            shard.stop()
            if bare is not None:
                bare.terminate()
                bare.wait()
    print(f"point select, {args.rounds} rounds of {args.calls} calls per server, {args.concurrency} in flight, "
          f"response {len(response)} bytes; medians over rounds")
    for label, which in (("wall-clock throughput", 0), ("per second of server CPU", 1)):
        shard_rate = statistics.median(s[which] for s, _ in pairs)
        bare_rate = statistics.median(b[which] for _, b in pairs)
        ratios = sorted(s[which] / b[which] for s, b in pairs)
        print(f"  {label:<25}: shard {shard_rate:6.0f} calls/s, bare grpc.aio {bare_rate:6.0f} calls/s, "
              f"ratio {statistics.median(ratios):.2f} (rounds {ratios[0]:.2f}-{ratios[-1]:.2f}; target >= 0.70)")

if __name__ == "__main__":
    main()
