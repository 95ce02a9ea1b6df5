"""Online rebalancing: databases moved per second, and the latency a rebalance adds to requests.

    python bench/rebalance.py [--databases 600] [--rows 100] [--seconds 5] [--clients 4]

One cluster (real router and shard processes, membership file): DATABASES databases of
ROWS rows each on 2 shards. The same closed-loop load (CLIENTS threads, point reads and
writes on random databases) runs during SECONDS of steady state, then while the cluster is
scaled to 3 shards (the new shard process started beforehand: the clock runs from publishing
the new epoch until every shard settled), then back to 2. Reports how many databases each
scale moved and how fast, and each phase's latency percentiles against the steady state's,
all in this run.
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.loot_cluster import POINT_READ, POINT_WRITE, ROWS, SEED, kv_token, running_cluster  # noqa: E402
from bench.stats import ms, percentile, table  # noqa: E402
from tests.client import Client  # noqa: E402
from loot.cli.local_cluster import LocalCluster, shard_names  # noqa: E402
from loot.tokens import Key  # noqa: E402


@dataclass
class Phase:
    name: str
    latencies: list[float]
    errors: int
    seconds: float
    moved: int = 0
    retried: int = 0  # calls between shards that failed and were retried
    error_kinds: Counter[str] = field(default_factory=Counter)

    def p(self, fraction: float) -> float:
        return percentile(sorted(self.latencies), fraction)


class Load:
    """CLIENTS threads, each a closed loop of one point read or write on a random database."""

    def __init__(self, address: str, tokens: list[str], clients: int):
        self._address, self._tokens = address, tokens
        self._stop = threading.Event()
        self.latencies: list[float] = []
        self.errors = 0
        self.error_kinds: Counter[str] = Counter()
        self._threads = [threading.Thread(target=self._loop, args=(seed,)) for seed in range(clients)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _loop(self, seed: int) -> None:
        chooser = random.Random(seed)
        with Client(self._address) as client:
            while not self._stop.is_set():
                token, row = chooser.choice(self._tokens), chooser.randint(1, ROWS)
                write = chooser.random() < 0.5
                started = time.perf_counter()
                try:
                    if write:
                        client.execute(token, POINT_WRITE, [f"v{started}", row])
                    else:
                        client.execute(token, POINT_READ, [row])
                except grpc.RpcError as error:  # counted and shown: a rebalance may delay or refuse a call
                    self.errors += 1
                    self.error_kinds[f"{error.code().name}: {error.details()[:100]}"] += 1
                    continue
                self.latencies.append(time.perf_counter() - started)


def steady(cluster: LocalCluster, tokens: list[str], clients: int, seconds: float) -> Phase:
    with Load(cluster.address, tokens, clients) as load:
        time.sleep(seconds)
    return Phase("steady state (2 shards)", load.latencies, load.errors, seconds, error_kinds=load.error_kinds)


def scaling(cluster: LocalCluster, tokens: list[str], clients: int, count: int) -> Phase:
    before = {name: cluster.handoff_status(name) for name in shard_names(count) if name in cluster.shards}
    for name in shard_names(count):
        if name not in cluster.shards:
            cluster.add_shard(name)  # step 1, before the clock: a process start is not a move
    with Load(cluster.address, tokens, clients) as load:
        started = time.perf_counter()
        cluster.scale(count)
        seconds = time.perf_counter() - started
    after = {name: cluster.handoff_status(name) for name in shard_names(count)}
    moved = sum(after[name].pulled - (before[name].pulled if name in before else 0) for name in after)
    retried = sum(after[name].failed - (before[name].failed if name in before else 0) for name in after)
    return Phase(f"scaling to {count} shards", load.latencies, load.errors, seconds, moved, retried, load.error_kinds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--databases", type=int, default=600)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the steady-state phase")
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    key = Key.generate()
    tokens = [kv_token(key, f"tenant-{i}") for i in range(args.databases)]
    with running_cluster(2, membership_file=True) as cluster:
        with Client(cluster.address) as client:
            for token in tokens:
                client.execute(token, SEED, [ROWS])
        phases = [steady(cluster, tokens, args.clients, args.seconds),
                  scaling(cluster, tokens, args.clients, 3),
                  scaling(cluster, tokens, args.clients, 2)]
    base = phases[0]
    rows = [[phase.name, f"{phase.seconds:.2f} s", phase.moved or "-",
             f"{phase.moved / phase.seconds:.0f}/s" if phase.moved else "-",
             ms(phase.p(0.5)), f"{phase.p(0.5) / base.p(0.5):.2f}x", ms(phase.p(0.99)), f"{phase.p(0.99) / base.p(0.99):.2f}x",
             len(phase.latencies), phase.errors, phase.retried] for phase in phases]
    print(f"{args.databases} databases of {ROWS} rows, {args.clients} clients of point reads and writes")
    print(table(["phase", "time", "moved", "moved per s", "p50", "vs steady", "p99", "vs steady", "calls", "errors", "retried"], rows))
    for phase in phases:
        for kind, count in phase.error_kinds.items():
            print(f"{phase.name}: {count} x {kind}")


if __name__ == "__main__":
    main()
