"""Continuous replication's costs (docs/backups.md): one shard process, replicating with Litestream to a
directory, against the same shard without replication, in the same run.

    python bench/backup.py [--writes 3000] [--databases 1000] [--seconds 20]

1. Write throughput (INSERTs over 20 databases, 8 at a time), replication off, then on: the ratio.
2. Replication lag under sustained writes to one database: each write's acknowledgement time against
   the first time a restore of the replica shows it (resolution: one restore, ~0.1 s).
3. Litestream's memory and CPU with --databases databases on the shard (its --replica-interval:
   --interval), idle, then with writes to random databases at --rate per second (--only-many: this alone).
   --compare-active, alone: the same shard population with every database in Litestream's set
   (--replica-active 0) against the recently used only (--replica-active --window minutes), while the
   writes go to --active of the databases; the idle figures are taken once the window has passed.
4. Time to restore one database, and --restore-sample of the shard's (4 restores at a time).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import apsw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.shard_process import ACCOUNT, ShardProcess, channel, closed_loop, cpu_seconds, execute_request, raw_execute  # noqa: E402
from loot.ids import database_id  # noqa: E402
from loot.secret import SECRET_HEADER  # noqa: E402
from loot.shard.replica_restore import restore  # noqa: E402
from loot.shard.replica_target import parse_target  # noqa: E402
from loot.v1 import database_pb2 as pb  # noqa: E402

SCHEMA = ("CREATE TABLE t (n INTEGER PRIMARY KEY, body TEXT); INSERT INTO _filters VALUES ('t', 'all', 'true'); "
          "INSERT INTO _rules VALUES ('t', 'write', 'all', 'true');")
MIB = 1024 * 1024


def insert(tenant: str, n: int) -> bytes:
    return execute_request(tenant, "INSERT INTO t VALUES (?, ?)",
                           [pb.Value(integer=n), pb.Value(text="x" * 100)], SCHEMA)


async def write_many(shard: ShardProcess, tenants: list[str], count: int, concurrency: int, base: int = 0) -> float:
    metadata = ((SECRET_HEADER, shard.secret),)
    async with channel(shard.address) as chan:
        execute = raw_execute(chan)
        return await closed_loop(lambda i: execute(insert(tenants[i % len(tenants)], base + i), metadata=metadata),
                                 count, concurrency)


def throughput(data: Path, env: dict[str, str], writes: int) -> float:
    shard = ShardProcess(data, env)
    try:
        tenants = [f"w{i}" for i in range(20)]
        asyncio.run(write_many(shard, tenants, 200, 8, base=10**9))  # warm: databases made
        return asyncio.run(write_many(shard, tenants, writes, 8))
    finally:
        shard.stop()


def replicator_pid(shard: ShardProcess) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for status in Path("/proc").glob("[0-9]*/status"):
            try:
                text = status.read_text()
            except OSError:
                continue
            if f"PPid:\t{shard.process.pid}\n" in text and "Name:\tlitestream\n" in text:
                return int(status.parent.name)
        time.sleep(0.2)
    raise RuntimeError("no litestream under the shard")


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def lag(data: Path, replica: Path, seconds: float) -> list[float]:
    """Lags (s) of writes to one database, written back to back for `seconds`."""
    shard = ShardProcess(data, {"LOOT_REPLICA": str(replica)})
    target, acked, stop = parse_target(str(replica)), {}, threading.Event()
    the_id = database_id(ACCOUNT, "bench", "lag")

    async def writer() -> None:
        metadata = ((SECRET_HEADER, shard.secret),)
        async with channel(shard.address) as chan:
            execute, n = raw_execute(chan), 0
            while not stop.is_set():
                await execute(insert("lag", n), metadata=metadata)
                acked[n] = time.monotonic()
                n += 1
                await asyncio.sleep(0.01)

    thread = threading.Thread(target=asyncio.run, args=(writer(),), daemon=True)
    thread.start()
    seen, lags, ends = -1, [], time.monotonic() + seconds
    try:
        with tempfile.TemporaryDirectory() as scratch:
            while time.monotonic() < ends or seen < max(acked, default=-1):
                looked = time.monotonic()
                if looked > ends:
                    stop.set()
                out = Path(scratch) / f"{looked}.sqlite"
                try:
                    restore(target, the_id, out)
                except Exception:
                    continue
                conn = apsw.Connection(str(out))
                top = conn.execute("SELECT coalesce(max(n), -1) FROM t").fetchone()[0]
                conn.close()
                lags += [looked - acked[n] for n in range(seen + 1, top + 1) if n in acked]
                seen = max(seen, top)
                out.unlink()
    finally:
        stop.set()
        thread.join(10)
        shard.stop()
    return lags


def many(data: Path, replica: Path, count: int, seconds: float, rate: float, interval: float,
         window: float = 0.0, active: int = 0) -> dict[str, float]:
    """Litestream's costs with `count` databases; writes at `rate` go to the first `active` (all when 0);
    `window`: the shard's --replica-active (0: every database in Litestream's set)."""
    shard = ShardProcess(data, {"LOOT_REPLICA": str(replica), "LOOT_REPLICA_INTERVAL": str(interval),
                                "LOOT_REPLICA_ACTIVE": str(window)})
    try:
        pid = replicator_pid(shard)
        tenants = [f"m{i}" for i in range(count)]
        started = time.monotonic()
        asyncio.run(write_many(shard, tenants, count, 16))
        made = time.monotonic() - started
        time.sleep(seconds + window * 60 * 1.5)  # Litestream takes in the new databases; idle ones leave
        cpu, idle_rss, fds = cpu_seconds(pid), rss(pid), len(list(Path(f"/proc/{pid}/fd").iterdir()))
        time.sleep(seconds)
        idle_cpu = (cpu_seconds(pid) - cpu) / seconds
        cpu = cpu_seconds(pid)

        async def steady() -> None:
            metadata = ((SECRET_HEADER, shard.secret),)
            async with channel(shard.address) as chan:
                execute = raw_execute(chan)
                ends, n = time.monotonic() + seconds, count
                while time.monotonic() < ends:
                    await execute(insert(random.choice(tenants[:active or count]), n), metadata=metadata)
                    n += 1
                    await asyncio.sleep(1 / rate)

        asyncio.run(steady())
        active_cpu, active_rss = (cpu_seconds(pid) - cpu) / seconds, rss(pid)
        return {"made_s": made, "idle_rss": idle_rss, "idle_cpu": idle_cpu, "active_rss": active_rss,
                "active_cpu": active_cpu, "shard_rss": shard.rss_bytes(), "fds": fds}
    finally:
        shard.stop()


def restore_times(replica: Path, count: int) -> tuple[float, float]:
    """Seconds to restore one database, and `count` of them."""
    target = parse_target(str(replica))
    ids = [database_id(ACCOUNT, "bench", f"m{i}") for i in range(count)]
    with tempfile.TemporaryDirectory() as scratch:
        started = time.monotonic()
        restore(target, ids[0], Path(scratch) / "one.sqlite")
        one = time.monotonic() - started
        started = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda the_id: restore(target, the_id, Path(scratch) / f"{the_id}.sqlite"), ids))
        return one, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writes", type=int, default=3000)
    parser.add_argument("--databases", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rate", type=float, default=100, help="writes per second while active")
    parser.add_argument("--interval", type=float, default=1.0, help="the shard's --replica-interval for part 3")
    parser.add_argument("--only-many", action="store_true", help="part 3 alone")
    parser.add_argument("--compare-active", action="store_true",
                        help="part 3 alone, every database in the set against the recently used")
    parser.add_argument("--window", type=float, default=None,
                        help="--replica-active minutes: 0.25 for --compare-active, else 0 (every database in the set)")
    parser.add_argument("--active", type=int, default=0,
                        help="how many of the databases the writes go to (0: all; 50 for --compare-active)")
    parser.add_argument("--restore-sample", type=int, default=1000, help="databases restored to time a shard's")
    args = parser.parse_args()
    if args.window is None:
        args.window = 0.25 if args.compare_active else 0.0
    if args.compare_active and not args.active:
        args.active = 50
    with tempfile.TemporaryDirectory() as root:
        root = Path(root)
        if args.compare_active:
            compare_active(args, root)
            return
        if args.only_many:
            print(_many_line(args, many(root / "many", root / "many-replica", args.databases, args.seconds,
                                        args.rate, args.interval, args.window or 0, args.active)))
            return
        rounds = {"off": [], "on": []}
        for round_ in range(2):  # alternated, so that neither side always runs on a colder machine
            rounds["off"].append(throughput(root / f"off{round_}", {}, args.writes))
            rounds["on"].append(throughput(root / f"on{round_}", {"LOOT_REPLICA": str(root / f"on{round_}-r")},
                                           args.writes))
        off, on = statistics.median(rounds["off"]), statistics.median(rounds["on"])
        print(f"write throughput (median of 2): replication off {off:.0f}/s, on {on:.0f}/s, ratio on/off "
              f"{on / off:.2f} (rounds: off {', '.join(f'{r:.0f}' for r in rounds['off'])}; "
              f"on {', '.join(f'{r:.0f}' for r in rounds['on'])})")
        lags = sorted(lag(root / "lag", root / "lag-replica", args.seconds))
        p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
        print(f"replication lag over {len(lags)} writes: p50 {statistics.median(lags):.2f}s, p99 {p99:.2f}s, "
              f"max {lags[-1]:.2f}s")
        print(_many_line(args, many(root / "many", root / "many-replica", args.databases, args.seconds, args.rate,
                                    args.interval)))
        sample = min(args.databases, args.restore_sample)
        one, whole = restore_times(root / "many-replica", sample)
        print(f"restore: one database {one:.2f}s; {sample} of the {args.databases} {whole:.1f}s "
              f"({sample / whole:.1f} databases/s, 4 at a time: all {args.databases} in "
              f"~{args.databases / (sample / whole) / 60:.0f} min)")


def compare_active(args: argparse.Namespace, root: Path) -> None:
    every = many(root / "every", root / "every-replica", args.databases, args.seconds, args.rate, args.interval, 0,
                 args.active)
    recent = many(root / "recent", root / "recent-replica", args.databases, args.seconds, args.rate, args.interval,
                  args.window, args.active)
    print(f"{args.databases} databases, writes ({args.rate:g}/s) to {args.active} of them; litestream with every "
          f"database in its set / with those used in the last {args.window:g} min:")
    for what, key, unit in (("idle RSS", "idle_rss", MIB), ("idle CPU", "idle_cpu", 1), ("active RSS", "active_rss", MIB),
                            ("active CPU", "active_cpu", 1), ("descriptors", "fds", 1)):
        ratio = recent[key] / every[key] if every[key] else float("nan")
        print(f"  {what}: {every[key] / unit:.2f} / {recent[key] / unit:.2f} (ratio {ratio:.3f})")


def _many_line(args: argparse.Namespace, figures: dict[str, float]) -> str:
    return (f"--replica-active {args.window:g} --replica-interval {args.interval:g}: {args.databases} databases made in {figures['made_s']:.0f}s; "
            f"writes to {args.active or args.databases}; litestream idle: {figures['idle_rss'] / MIB:.0f} MiB RSS, {figures['idle_cpu']:.2f} CPU; active "
            f"({args.rate:g} writes/s): {figures['active_rss'] / MIB:.0f} MiB RSS, {figures['active_cpu']:.2f} CPU; "
            f"shard {figures['shard_rss'] / MIB:.0f} MiB RSS; litestream holds {figures['fds']} file descriptors "
            f"({figures['fds'] / args.databases:.1f} per database)")


if __name__ == "__main__":
    main()
