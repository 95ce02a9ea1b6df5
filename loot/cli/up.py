"""`loot up`: a local cluster (one router, N shards) in the foreground; `loot scale` changes N."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from loot.cli import scale_requests
from loot.cli.local_cluster import LocalCluster


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=7070, help="router port (default 7070)")
    parser.add_argument("--data", type=Path, default=Path("loot-data"), help="data directory, reused on restart (default ./loot-data)")
    parser.add_argument("--shards", type=int, default=2, help="number of shard processes (default 2; "
                        "a data directory scaled by `loot scale` keeps its own number)")


def run(args: argparse.Namespace) -> None:
    if args.shards < 1:
        sys.exit("loot: --shards must be at least 1")
    if scale_requests.running_up(args.data):
        sys.exit(f"loot: a `loot up` already runs on {args.data}")
    cluster = LocalCluster(args.data, port=args.port, shards=args.shards, membership_file=True)
    if len(cluster.names) != args.shards:
        print(f"loot: {args.data} has {len(cluster.names)} shards (set by `loot scale`); starting those", flush=True)
    stop, scale = threading.Event(), threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    signal.signal(scale_requests.SIGNAL, lambda *_: scale.set())
    try:
        address = cluster.start()
    except RuntimeError as error:
        cluster.stop()
        sys.exit(f"loot: {error}")
    scale_requests.mark_running(args.data)
    try:
        print(_banner(address, args.data), flush=True)
        _supervise(cluster, args.data, stop, scale)
        print("loot: stopping…", flush=True)
    finally:
        scale_requests.mark_stopped(args.data)
        cluster.stop()


def _supervise(cluster: LocalCluster, data: Path, stop: threading.Event, scale: threading.Event) -> None:
    while not stop.wait(0.5):
        if scale.is_set():
            scale.clear()
            _scale(cluster, data)
        dead = [child.name for child in cluster.children() if not child.alive()]
        if dead:
            print(f"loot: {', '.join(dead)} exited; stopping the cluster", file=sys.stderr)
            cluster.stop()
            sys.exit(1)


def _scale(cluster: LocalCluster, data: Path) -> None:
    request = scale_requests.take(data)
    if request is None:
        return
    request_id, count = request
    print(f"loot: scaling to {count} shard(s)", flush=True)
    progress = lambda epoch, statuses: scale_requests.report(data, request_id, epoch, statuses)  # noqa: E731
    try:
        membership = cluster.scale(count, progress)
    except (RuntimeError, ValueError) as error:
        scale_requests.report(data, request_id, cluster.epoch, {}, done=True, error=str(error))
        print(f"loot: scaling failed: {error}", file=sys.stderr, flush=True)
        return
    scale_requests.report(data, request_id, membership.epoch,
                          {name: cluster.handoff_status(name) for name in membership.shards}, done=True)
    print(f"loot: {count} shard(s) at membership epoch {membership.epoch}", flush=True)


def _banner(address: str, data: Path) -> str:
    return f"""
Loot is up: router on {address}, data in {data}/ (Ctrl-C stops it).
Try it from another terminal:

    loot keygen --out key.json
    loot sql --router {address} --key key.json --db app --tenant alice \\
        --schema "CREATE TABLE notes (body TEXT);
        INSERT INTO _filters VALUES ('notes', 'all', 'true'); INSERT INTO _rules VALUES ('notes', 'write', 'all', 'true')" \\
        "INSERT INTO notes VALUES (?)" hello
    loot sql --router {address} --key key.json --db app --tenant alice "SELECT * FROM notes"
"""
