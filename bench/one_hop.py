"""Point reads and single-row writes sent to the owning shard's public port (one hop), through the
router (two hops), and to a bare grpc.aio server returning the same bytes, interleaved in one run.

    python bench/one_hop.py [--duration 3] [--concurrency 1,8,32,64] [--rounds 2]

The harness is bench/router_path.py's (h2load, the same token and table, CPU per call from /proc);
this adds the one-hop side, measured in the same rounds.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import router_path  # noqa: E402
from bench.loot_cluster import ROWS, SEED, kv_token, running_cluster  # noqa: E402
from bench.router_path import EXECUTE, OPERATIONS, Side, _best, _side, bare_server, call_raw  # noqa: E402
from bench.stats import ms, table  # noqa: E402
from bench.system import ensure_tools  # noqa: E402
from tests.client import Client  # noqa: E402
from loot.ids import database_id  # noqa: E402
from loot.ring import Ring  # noqa: E402
from loot.tokens import Key  # noqa: E402
from loot.v1 import database_pb2 as pb  # noqa: E402

TARGETS = {"point read": 0.5, "single-row write": 0.4}  # one hop / bare


@dataclass(frozen=True)
class Paths:
    operation: str
    one_hop: Side
    router: Side
    bare: Side

    def ratio(self, side: Side) -> float:
        return side.load.per_second / self.bare.load.per_second


def measure(concurrencies: list[int], duration: float, rounds: int = 2) -> list[Paths]:
    ensure_tools("h2load")
    key = Key.generate()
    token = kv_token(key, "one-hop")
    results = []
    with running_cluster() as cluster:
        owner = cluster.shards[Ring(cluster.names).owner(database_id(key.account, "bench", "one-hop"))]
        with Client(cluster.address) as client:
            client.execute(token, SEED, [ROWS])
        urls = {"one hop": f"http://{owner.public}{EXECUTE}", "router": f"http://{cluster.address}{EXECUTE}"}
        pids = {"router": [cluster.router.process.pid], "shards": [s.process.pid for s in cluster.shards.values()]}
        for operation, stmt in OPERATIONS.items():
            request = pb.ExecuteRequest(statement=stmt).SerializeToString()
            response = call_raw(owner.public, request, token)
            with bare_server(response) as (bare_address, bare_pid):
                bare_url = f"http://{bare_address}{EXECUTE}"
                for concurrency in concurrencies:
                    sides: dict[str, list[Side]] = {"one hop": [], "router": [], "bare": []}
                    for _ in range(rounds):  # interleaved, best of each: the shared machine's drift hits all alike
                        for path in ("one hop", "router"):
                            sides[path].append(_side(pids, urls[path], request, response, token, concurrency, duration))
                        sides["bare"].append(_side({"bare": [bare_pid]}, bare_url, request, response, None,
                                                   concurrency, duration))
                    results.append(Paths(operation, _best(sides["one hop"]), _best(sides["router"]), _best(sides["bare"])))
    return results


def report(results: list[Paths]) -> str:
    rows = [(p.operation, p.bare.load.concurrency, f"{p.one_hop.load.per_second:,.0f}", f"{p.router.load.per_second:,.0f}",
             f"{p.bare.load.per_second:,.0f}", f"**{p.ratio(p.one_hop):.2f}x**", f"{p.ratio(p.router):.2f}x",
             ms(p.one_hop.load.p50), ms(p.one_hop.load.p99), ms(p.router.load.p50), ms(p.router.load.p99),
             ms(p.bare.load.p50), ms(p.bare.load.p99), f"{p.one_hop.cpu_per_call['shards'] * 1e6:.0f}",
             f"{p.bare.cpu_per_call['bare'] * 1e6:.0f}")
            for p in results]
    headers = ("operation", "concurrency", "one hop calls/s", "router calls/s", "bare calls/s", "one hop / bare",
               "router / bare", "one hop p50", "one hop p99", "router p50", "router p99", "bare p50", "bare p99",
               "one-hop shard CPU µs/call", "bare CPU µs/call")
    return table(headers, rows)


def summary(results: list[Paths]) -> list[str]:
    lines = []
    for operation, target in TARGETS.items():
        mine = [p for p in results if p.operation == operation]
        one_hop = [p.ratio(p.one_hop) for p in mine]
        router = [p.ratio(p.router) for p in mine]
        lines.append(f"{operation}, one hop: {min(one_hop):.2f}-{max(one_hop):.2f}x a bare server (target >= {target}x); "
                     f"through the router {min(router):.2f}-{max(router):.2f}x")
    return lines


def main() -> None:
    parser = router_path.arguments(argparse.ArgumentParser(description=__doc__))
    args = parser.parse_args()
    results = measure([int(c) for c in args.concurrency.split(",")], args.duration, args.rounds)
    print("## One hop: the owning shard's public port vs the router vs a bare grpc.aio server, h2load\n")
    print(report(results))
    print()
    print("\n".join(summary(results)))


if __name__ == "__main__":
    main()
