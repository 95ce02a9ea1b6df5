"""Benchmark helpers: a real shard process, and raw calls to its gRPC service."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc

from loot.ids import database_id
from loot.internal.v1 import shard_pb2
from loot.secret import SECRET_HEADER, new_secret
from loot.grpc_options import GRPC_OPTIONS
from loot.serving import parse_listening
from loot.v1 import database_pb2 as pb

EXECUTE = "/loot.internal.v1.Shard/Execute"
ACCOUNT = "bench-account"


class ShardProcess:
    """`loot shard` as a child process on a free port; `secret` is what callers must present."""

    def __init__(self, data: Path, env: dict[str, str] | None = None):
        self.secret = new_secret()
        argv = [sys.executable, "-m", "loot", "shard", "--name", "shard-0", "--shards", "shard-0",
                "--data", str(data), "--port", "0"]
        environment = {**os.environ, **(env or {}), "LOOT_CLUSTER_SECRET": self.secret}
        self.process = subprocess.Popen(argv, env=environment, stdout=subprocess.PIPE, text=True)
        self.address = parse_listening(self.process.stdout.readline())[2]
        # Drain the rest (the access log, a line per call): a full pipe would stall the shard mid-benchmark.
        threading.Thread(target=self.process.stdout.read, daemon=True).start()

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.process.pid)

    def rss_bytes(self, field: str = "VmRSS") -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no {field} for the shard")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process (all its threads) has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def execute_request(tenant: str, sql: str, params: list[pb.Value] = (), schema: str = "") -> bytes:
    """A serialized ShardExecuteRequest for database (ACCOUNT, "bench", tenant)."""
    context = shard_pb2.Context(database_id=database_id(ACCOUNT, "bench", tenant), account=ACCOUNT, name="bench",
                                tenant=tenant, schema=schema)
    request = pb.ExecuteRequest(statement=pb.Statement(sql=sql, params=params))
    return shard_pb2.ShardExecuteRequest(context=context, request=request).SerializeToString()


def raw_execute(channel: grpc.aio.Channel) -> grpc.aio.UnaryUnaryMultiCallable:
    """Execute with bytes in and out, so the client side costs the same against every server."""
    return channel.unary_unary(EXECUTE)


def channel(address: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(address, options=GRPC_OPTIONS)


async def closed_loop(call: Callable[[int], object], total: int, concurrency: int) -> float:
    """Run `await call(i)` for i in range(total), `concurrency` at a time; return calls per second."""
    counter = iter(range(total))

    async def worker() -> None:
        for i in counter:
            await call(i)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return total / (time.perf_counter() - started)
