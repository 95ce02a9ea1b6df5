"""Point reads through the router's HTTP port (Connect, JSON) against its gRPC port, same router, same run.

    python bench/http_port.py [--duration 3] [--concurrency 1,8,32] [--rounds 2]

h2load drives native gRPC over HTTP/2 (the baseline), and Connect JSON and binary over HTTP/2 cleartext;
wrk drives Connect JSON over HTTP/1.1 (a connection per client, as browsers have). A second
router with no HTTP port, on the same shards, answers the same gRPC calls: what serving HTTP costs the
native path (nothing is expected: the HTTP server idles in the router's own event loop).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import json_format

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import h2load, wrk  # noqa: E402
from bench.loot_cluster import POINT_READ, ROWS, SEED, kv_token, running_cluster  # noqa: E402
from bench.stats import Load, ms, table  # noqa: E402
from bench.system import cpu_seconds, ensure_tools  # noqa: E402
from loot.cli.local_cluster import Child, LocalCluster  # noqa: E402
from loot.tokens import Key  # noqa: E402
from loot.v1 import database_pb2 as pb  # noqa: E402
from tests.client import Client, statement  # noqa: E402

EXECUTE = "/loot.v1.Database/Execute"
BASELINE = "gRPC (HTTP/2)"


@dataclass(frozen=True)
class Result:
    side: str
    load: Load
    router_cpu_per_call: float  # seconds


def measure(concurrencies: list[int], duration: float, rounds: int = 2) -> list[tuple[int, list[Result]]]:
    ensure_tools("h2load", "wrk")
    token = kv_token(Key.generate(), "http")
    request = pb.ExecuteRequest(statement=statement(POINT_READ, [ROWS // 2]))
    with running_cluster(env={"LOOT_HTTP_PORT": "0"}) as cluster, grpc_only_router(cluster) as plain:
        with Client(cluster.address) as client:
            client.execute(token, SEED, [ROWS])
            response = client.stub.Execute(request, metadata=(("authorization", f"Bearer {token}"),)).SerializeToString()
        sides = _sides(cluster, plain, request, response, token)
        pids = {"router": cluster.router.process.pid, "plain": plain.process.pid}
        results = []
        for concurrency in concurrencies:
            best: dict[str, Result] = {}
            for _ in range(rounds):  # interleaved rounds, best of each: the shared machine's bursts hit all alike
                for name, (router, drive) in sides.items():
                    result = _run(name, pids[router], lambda: drive(concurrency, duration), duration)
                    if name not in best or result.load.per_second > best[name].load.per_second:
                        best[name] = result
            results.append((concurrency, list(best.values())))
        return results


def _sides(cluster: LocalCluster, plain: Child, request: pb.ExecuteRequest, response: bytes,
           token: str) -> dict[str, tuple[str, Callable[[int, float], Load]]]:
    binary, as_json = request.SerializeToString(), json.dumps(json_format.MessageToDict(request)).encode()
    url = f"{cluster.http}{EXECUTE}"

    def grpc_to(address: str) -> Callable[[int, float], Load]:
        return lambda c, d: h2load.drive(f"http://{address}{EXECUTE}", binary, response, token=token,
                                         concurrency=c, duration=d)

    def connect(body: bytes, content_type: str) -> Callable[[int, float], Load]:
        headers = [f"authorization: Bearer {token}", f"content-type: {content_type}"]
        return lambda c, d: h2load.drive_http(url, body, headers, concurrency=c, duration=d)

    def connect_http1(body: bytes) -> Callable[[int, float], Load]:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        return lambda c, d: wrk.drive(url, body, headers, concurrency=c, duration=d)

    return {
        BASELINE: ("router", grpc_to(cluster.address)),
        "Connect JSON (HTTP/1.1)": ("router", connect_http1(as_json)),
        "Connect JSON (HTTP/2)": ("router", connect(as_json, "application/json")),
        "Connect binary (HTTP/2)": ("router", connect(binary, "application/proto")),
        "gRPC, router without HTTP port": ("plain", grpc_to(plain.address)),
    }


def _run(name: str, pid: int, drive: Callable[[], Load], duration: float) -> Result:
    before = cpu_seconds([pid])
    load = drive()
    calls = load.per_second * (duration + h2load.WARM_UP)  # CPU counts over h2load's warm-up second too
    return Result(name, load, (cpu_seconds([pid]) - before) / calls)


@contextlib.contextmanager
def grpc_only_router(cluster: LocalCluster) -> Iterator[Child]:
    """A second router on the same shards, on a port of its own, with no HTTP port."""
    argv = [arg for arg in cluster.router.argv]
    argv[argv.index("--port") + 1] = "0"
    env = {key: value for key, value in cluster.env.items() if key != "LOOT_HTTP_PORT"}
    router = Child("router-grpc-only", argv, env, cluster.sink)
    router.start()
    try:
        router.wait_ready()
        yield router
    finally:
        router.signal(signal.SIGTERM)
        router.wait(10)


def ratio(results: list[Result], side: str, baseline: str = BASELINE) -> float:
    by_side = {result.side: result for result in results}
    return by_side[side].load.per_second / by_side[baseline].load.per_second


def report(measured: list[tuple[int, list[Result]]]) -> str:
    rows = [(r.side, concurrency, f"{r.load.per_second:,.0f}", f"**{ratio(results, r.side):.2f}x**",
             ms(r.load.p50), ms(r.load.p99), f"{r.router_cpu_per_call * 1e6:.0f}")
            for concurrency, results in measured for r in results]
    headers = ("point read via", "concurrency", "calls/s", f"vs {BASELINE}", "p50", "p99", "router CPU µs/call")
    return table(headers, rows)


def arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per measurement (after 1 s warm-up)")
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated concurrent calls")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds per side; the best one counts")
    return parser


def main() -> None:
    args = arguments(argparse.ArgumentParser(description=__doc__)).parse_args()
    print("## Point reads: the router's HTTP port (Connect) vs its gRPC port, h2load\n")
    print(report(measure([int(c) for c in args.concurrency.split(",")], args.duration, args.rounds)))


if __name__ == "__main__":
    main()
