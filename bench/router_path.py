"""Point reads and single-row writes through router -> shard with a real token,
against a bare grpc.aio server returning the same bytes, in the same run.

    python bench/router_path.py [--duration 3] [--concurrency 1,8,32,64] [--rounds 2] [--routers 1]

`--routers 2` runs a second router process on the same port (the router is stateless; every
process is started with --reuse-port, so the kernel spreads h2load's connections over both).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import h2load  # noqa: E402
from bench.loot_cluster import POINT_READ, POINT_WRITE, ROWS, SEED, kv_token, running_cluster  # noqa: E402
from bench.stats import ms, table  # noqa: E402
from bench.system import cpu_seconds, ensure_tools  # noqa: E402
from tests.client import Client, statement  # noqa: E402
from loot.cli.local_cluster import Child, LocalCluster  # noqa: E402
from loot.grpc_options import GRPC_OPTIONS  # noqa: E402
from loot.tokens import Key  # noqa: E402
from loot.v1 import database_pb2 as pb  # noqa: E402

EXECUTE = "/loot.v1.Database/Execute"
OPERATIONS = {
    "point read": statement(POINT_READ, [ROWS // 2]),
    "single-row write": statement(POINT_WRITE, ["changed", ROWS // 2]),
}


@dataclass(frozen=True)
class Side:
    """One server's measurement: its load figures and the CPU its processes spent per call."""

    load: h2load.Load
    cpu_per_call: dict[str, float]  # process group -> CPU seconds per call


@dataclass(frozen=True)
class Comparison:
    operation: str
    loot: Side
    bare: Side
    routers: int = 1

    @property
    def label(self) -> str:
        return self.operation if self.routers == 1 else f"{self.operation}, {self.routers} router processes"

    @property
    def ratio(self) -> float:
        return self.loot.load.per_second / self.bare.load.per_second

    @property
    def cpu_ceiling(self) -> float:
        """The throughput ratio if each process had its own core: the bare server's CPU per
        call over that of Loot's busiest process (router and shard run side by side)."""
        return self.bare.cpu_per_call["bare"] / max(self.loot.cpu_per_call.values())


def measure(concurrencies: list[int], duration: float, rounds: int = 2, routers: int = 1) -> list[Comparison]:
    ensure_tools("h2load")
    key = Key.generate()
    token = kv_token(key, "router-path")
    comparisons = []
    sharing = {"LOOT_REUSE_PORT": "true"} if routers > 1 else None  # the extra routers' port is the first's
    with running_cluster(env=sharing) as cluster, more_routers(cluster, routers - 1) as extra:
        with Client(cluster.address) as client:
            client.execute(token, SEED, [ROWS])
        url = f"http://{cluster.address}{EXECUTE}"
        for operation, stmt in OPERATIONS.items():
            request = pb.ExecuteRequest(statement=stmt).SerializeToString()
            response = call_raw(cluster.address, request, token)
            loot_pids = {"router": [router.process.pid for router in (cluster.router, *extra)],
                         "shards": [shard.process.pid for shard in cluster.shards.values()]}
            with bare_server(response) as (bare_address, bare_pid):
                bare_url = f"http://{bare_address}{EXECUTE}"
                for concurrency in concurrencies:
                    # Interleaved rounds, best of each side: drift and bursts in the
                    # shared machine's load hit both sides alike.
                    loots, bares = [], []
                    for _ in range(rounds):
                        loots.append(_side(loot_pids, url, request, response, token, concurrency, duration))
                        bares.append(_side({"bare": [bare_pid]}, bare_url, request, response, None, concurrency, duration))
                    comparisons.append(Comparison(operation, _best(loots), _best(bares), routers))
    return comparisons


@contextlib.contextmanager
def more_routers(cluster: LocalCluster, count: int) -> Iterator[list[Child]]:
    """`count` more router processes listening on the cluster's router port."""
    argv = list(cluster.router.argv)
    argv[argv.index("--port") + 1] = cluster.address.rsplit(":", 1)[1]
    routers = [Child(f"router-{i + 2}", argv, cluster.env, cluster.sink) for i in range(count)]
    try:
        for router in routers:
            router.start()
            router.wait_ready()
        yield routers
    finally:
        for router in routers:
            router.signal(signal.SIGTERM)
            router.wait(10)


def _side(pids: dict[str, list[int]], url: str, request: bytes, response: bytes, token: str | None,
          concurrency: int, duration: float) -> Side:
    before = {group: cpu_seconds(members) for group, members in pids.items()}
    load = h2load.drive(url, request, response, token=token, concurrency=concurrency, duration=duration)
    # CPU is counted over h2load's warm-up second too, taken to run at the measured rate.
    calls = load.per_second * (duration + h2load.WARM_UP)
    return Side(load, {group: (cpu_seconds(members) - before[group]) / calls for group, members in pids.items()})


def _best(sides: list[Side]) -> Side:
    return max(sides, key=lambda side: side.load.per_second)


def call_raw(address: str, request: bytes, token: str) -> bytes:
    """The router's exact response bytes for `request`, so the baseline returns the same."""
    with grpc.insecure_channel(address, options=GRPC_OPTIONS) as channel:
        call = channel.unary_unary(EXECUTE, request_serializer=None, response_deserializer=None)
        return call(request, metadata=(("authorization", f"Bearer {token}"),), timeout=10)


@contextlib.contextmanager
def bare_server(response: bytes) -> Iterator[tuple[str, int]]:
    with tempfile.NamedTemporaryFile(prefix="bare-response-") as file:
        file.write(response)
        file.flush()
        process = subprocess.Popen([sys.executable, str(Path(__file__).with_name("bare_server.py")), file.name],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            yield f"127.0.0.1:{int(process.stdout.readline())}", process.pid
        finally:
            process.stdin.close()
            process.wait(10)


def report(comparisons: list[Comparison]) -> str:
    rows = [(c.label, c.loot.load.concurrency, f"{c.loot.load.per_second:,.0f}", f"{c.bare.load.per_second:,.0f}",
             f"**{c.ratio:.2f}x**", ms(c.loot.load.p50), ms(c.loot.load.p99), ms(c.bare.load.p50), ms(c.bare.load.p99),
             *(f"{c.loot.cpu_per_call[group] * 1e6:.0f}" for group in ("router", "shards")),
             f"{c.bare.cpu_per_call['bare'] * 1e6:.0f}", f"{c.cpu_ceiling:.2f}x")
            for c in comparisons]
    headers = ("operation", "concurrency", "Loot calls/s", "bare calls/s", "Loot / bare", "Loot p50", "Loot p99",
               "bare p50", "bare p99", "router CPU µs/call", "shards CPU µs/call", "bare CPU µs/call", "CPU ceiling")
    return table(headers, rows)


def arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per measurement (after 1 s warm-up)")
    parser.add_argument("--concurrency", default="1,8,32,64",
                        help="comma-separated concurrent calls (all to one database: over 64, some are refused)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds per side; the best one counts")
    parser.add_argument("--routers", type=int, default=1, help="router processes sharing the router's port")
    return parser


def main() -> None:
    args = arguments(argparse.ArgumentParser(description=__doc__)).parse_args()
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    print("## Router path: Loot (router -> shard -> SQLite) vs a bare grpc.aio server, h2load\n")
    print(report(measure(concurrencies, args.duration, args.rounds, args.routers)))


if __name__ == "__main__":
    main()
