"""Where the router and the shard spend their time under load: py-spy samples both
processes (only the thread holding the GIL, so waiting threads do not count)
while h2load drives point reads, and single calls of the per-request steps are
timed in-process.

    python bench/profile_hot_path.py [--duration 8] [--concurrency 32] [--top 18]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import tempfile
import time
import timeit
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import apsw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import h2load  # noqa: E402
from bench.loot_cluster import KV_SCHEMA, POINT_READ, ROWS, SEED, kv_token, running_cluster  # noqa: E402
from bench.router_path import EXECUTE, call_raw  # noqa: E402
from bench.stats import table  # noqa: E402
from bench.system import ensure_tools  # noqa: E402
from tests.client import Client, statement  # noqa: E402
from loot.ids import database_id  # noqa: E402
from loot.ring import Ring  # noqa: E402
from loot.tokens import Key, verify  # noqa: E402
from loot.tokens.cache import VerifiedTokens  # noqa: E402
from loot.v1 import database_pb2 as pb  # noqa: E402
from loot.shard import schema, system_tables  # noqa: E402

PY_SPY = Path(sys.executable).with_name("py-spy")
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>.*?)(?::\d+)?\)$")
# Frames on every stack (process start, event loop, thread start): they say nothing.
_SCAFFOLDING = re.compile(r"<frozen runpy>|asyncio/(runners|base_events)\.py|threading\.py|__main__\.py|"
                          r"cli/main\.py|^main \(|^<module> ")


def profile(duration: float, concurrency: int) -> dict[str, Path]:
    """Collapsed py-spy stacks of the router and the owning shard under point reads."""
    ensure_tools("h2load")
    key = Key.generate()
    token = kv_token(key, "profile")
    out = Path(tempfile.mkdtemp(prefix="loot-profile-"))
    with running_cluster() as cluster:
        with Client(cluster.address) as client:
            client.execute(token, SEED, [ROWS])
        owner = Ring(cluster.names).owner(database_id(key.account, "bench", "profile"))
        pids = {"router": cluster.router.process.pid, owner: cluster.shards[owner].process.pid}
        request = pb.ExecuteRequest(statement=statement(POINT_READ, [ROWS // 2])).SerializeToString()
        response = call_raw(cluster.address, request, token)
        background = ThreadPoolExecutor(1)
        load = background.submit(h2load.drive, f"http://{cluster.address}{EXECUTE}", request, response,
                                 token=token, concurrency=concurrency, duration=duration + 2)
        recorders = {name: subprocess.Popen([str(PY_SPY), "record", "--gil", "--nonblocking", "-r", "200", "-d", f"{duration:g}",
                                             "-f", "raw", "-o", str(out / f"{name}.txt"), "-p", str(pid)],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                     for name, pid in pids.items()}
        for recorder in recorders.values():
            recorder.wait()
        load.result()  # a failed load would make the profile meaningless
        background.shutdown()
    return {name: out / f"{name}.txt" for name in pids}


def hot_frames(collapsed: Path, top: int) -> list[tuple[float, float, str]]:
    """(inclusive %, self %, function) for the functions in most samples."""
    inclusive, own, total = Counter(), Counter(), 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [_short(frame) for frame in stack.split(";")]
        total += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)
    ranked = [(frame, n) for frame, n in inclusive.most_common() if not _SCAFFOLDING.search(frame)]
    return [(100 * n / total, 100 * own[frame] / total, frame) for frame, n in ranked[:top]]


def _short(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = match["file"]
    for marker in ("site-packages/", "/perf/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{match['function']} ({path})"


def step_costs() -> dict[str, float]:
    """CPU microseconds per call of per-request steps the hot path could skip or shrink."""
    key = Key.generate()
    token = kv_token(key, "steps")
    claims = verify(token)
    conn = apsw.Connection(":memory:")
    system_tables.create(conn)
    schema.apply(conn, KV_SCHEMA)
    verified = VerifiedTokens()
    verified.verify(token)
    steps = {
        "router: verify a token not seen before (ES256 + claims)": lambda: verify(token),
        "router: verify a token seen before (verified-token cache hit)": lambda: verified.verify(token),
        "router: database id (SHA-256 of the triple)": lambda: database_id(claims.account, claims.name, claims.tenant),
        "shard: schema.apply with an unchanged claim": lambda: schema.apply(conn, KV_SCHEMA),
        "shard: database id re-check": lambda: database_id(claims.account, claims.name, claims.tenant),
    }
    costs = {name: _micros(step) for name, step in steps.items()}
    costs["shard: one hop to a worker thread and back (run_in_executor)"] = asyncio.run(_executor_hop())
    return costs


async def _executor_hop(calls: int = 5000) -> float:
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(8) as pool:
        start = time.process_time()  # CPU of both threads: the wake-ups cost, not the waiting
        for _ in range(calls):
            await loop.run_in_executor(pool, int)
        return (time.process_time() - start) / calls * 1e6


def report(collapsed: Path, top: int) -> str:
    return table(("incl. %", "self %", "function"),
                 [(f"{inclusive:.1f}", f"{own:.1f}", f"`{frame}`") for inclusive, own, frame in hot_frames(collapsed, top)])


def steps_report() -> str:
    return "### Per-request steps, timed alone\n\n" + table(
        ("step", "CPU µs per call"), [(step, f"{micros:.1f}") for step, micros in step_costs().items()])


def _micros(step) -> float:
    timer = timeit.Timer(step, timer=time.process_time)  # CPU time: the machine is shared
    number, seconds = timer.autorange()
    return min([seconds] + timer.repeat(number=number, repeat=3)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of sampling")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--top", type=int, default=18, help="functions to list per process")
    args = parser.parse_args()
    print(f"## Hot path profile (py-spy), point reads at concurrency {args.concurrency}\n")
    for name, collapsed in profile(args.duration, args.concurrency).items():
        print(f"### {name} (raw stacks: {collapsed})\n")
        print(report(collapsed, args.top) + "\n")
    print(steps_report())


if __name__ == "__main__":
    main()
