"""The Python work of one one-hop call, in process: the public Execute handler a shard's public port
serves (observation with its access-log line, admission from the verified-token cache, routing, the
engine on an open database), called with the HTTP port's stand-in for gRPC's context, against the bare apsw query
it runs as the baseline. No gRPC, no network: what a change to the per-call Python path saves.

    python bench/one_hop_in_process.py [--calls 5000] [--rounds 5] [--profile]

Writes go to a worker thread as in a shard; the access log goes to /dev/null (its formatting stays).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import logging
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.loot_cluster import POINT_READ, ROWS, SEED, kv_token  # noqa: E402
from bench.router_path import OPERATIONS  # noqa: E402
from tests.client import statement  # noqa: E402
from loot import settings  # noqa: E402
from loot.cli.main import parser  # noqa: E402
from loot.http.call_context import HttpCallContext  # noqa: E402
from loot.membership import membership_from_arguments  # noqa: E402
from loot.observability import logs  # noqa: E402
from loot.secret import SECRET_HEADER  # noqa: E402
from loot.serving import new_server  # noqa: E402
from loot.tokens import Key  # noqa: E402
from loot.v1 import database_pb2 as pb  # noqa: E402
from loot.router import server as router_server  # noqa: E402
from loot.router.shards import Shards  # noqa: E402
from loot.shard import limits as shard_limits  # noqa: E402
from loot.shard.databases import Databases  # noqa: E402
from loot.shard.service import ShardService  # noqa: E402
from loot.shard.storage import Storage  # noqa: E402
from loot.node.one_hop import OneHopService  # noqa: E402


async def measure(calls: int, rounds: int, profile: bool) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory(prefix="loot-bench-") as data:
        os.environ.setdefault("LOOT_CLUSTER_SECRET", "bench-" + "x" * 32)
        args = settings.resolve(parser().parse_args(
            ["shard", "--name", "shard-0", "--shards", "shard-0", "--data", data, "--public-port", "0"]), "shard")
        logs.configure("text", "info")
        logging.getLogger("loot").handlers[0].setStream(open(os.devnull, "w"))  # the handler configure made
        membership = membership_from_arguments(args, "shard")
        databases = Databases(Storage(Path(data), shard_limits.from_arguments(args), catalog=True))
        local = ShardService("shard-0", membership, databases)
        shards = Shards(membership, (SECRET_HEADER, os.environ["LOOT_CLUSTER_SECRET"]), None, require_addresses=False)
        service = router_server.database_service(args, "shard shard-0", shards, OneHopService, local=local)
        execute = service.add_to(new_server())["Execute"].unary_unary  # registered, never started
        context = HttpCallContext((("authorization", f"Bearer {kv_token(Key.generate(), 'in-process')}"),), None)
        await execute(pb.ExecuteRequest(statement=statement(SEED, [ROWS])).SerializeToString(), context)
        requests = {name: pb.ExecuteRequest(statement=stmt).SerializeToString() for name, stmt in OPERATIONS.items()}
        bare = next(iter(databases._actors.values())).database.conn

        async def handler(request: bytes) -> None:
            await execute(request, context)

        async def baseline(_: bytes) -> None:
            bare.execute(POINT_READ.replace("kv", "main.kv"), (ROWS // 2,)).fetchall()

        timings: dict[str, list[float]] = {name: [] for name in (*requests, "bare apsw point read")}
        for _ in range(rounds):
            for name, request in requests.items():
                timings[name].append(await _per_call_us(handler, request, calls))
            timings["bare apsw point read"].append(await _per_call_us(baseline, b"", calls))
        if profile:
            profiler = cProfile.Profile()
            profiler.enable()
            await _per_call_us(handler, requests["point read"], calls)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
        await databases.close()
        await shards.close()
    return timings


async def _per_call_us(call, request: bytes, calls: int) -> float:
    for _ in range(calls // 10):  # warm
        await call(request)
    started = time.process_time()
    for _ in range(calls):
        await call(request)
    return (time.process_time() - started) / calls * 1e6


def main() -> None:
    parser_ = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser_.add_argument("--calls", type=int, default=5000)
    parser_.add_argument("--rounds", type=int, default=5)
    parser_.add_argument("--profile", action="store_true", help="also print cProfile's view of point reads")
    args = parser_.parse_args()
    timings = asyncio.run(measure(args.calls, args.rounds, args.profile))
    bare = statistics.median(timings["bare apsw point read"])
    print("| call | CPU µs per call (median of rounds) | vs the bare apsw point read |\n|---|---|---|")
    for name, values in timings.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.1f} | {median / bare:.1f}x |")


if __name__ == "__main__":
    main()
