"""`loot up`: a local cluster (one router, N shards) in the foreground."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from loot.local_cluster import LocalCluster


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=7070, help="router port (default 7070)")
    parser.add_argument("--data", type=Path, default=Path("loot-data"), help="data directory, reused on restart (default ./loot-data)")
    parser.add_argument("--shards", type=int, default=2, help="number of shard processes (default 2)")


def run(args: argparse.Namespace) -> None:
    if args.shards < 1:
        sys.exit("loot: --shards must be at least 1")
    cluster = LocalCluster(args.data, port=args.port, shards=args.shards)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        address = cluster.start()
    except RuntimeError as error:
        cluster.stop()
        sys.exit(f"loot: {error}")
    print(_banner(address, args.data), flush=True)
    while not stop.wait(0.5):
        dead = [child.name for child in cluster.children() if not child.alive()]
        if dead:
            print(f"loot: {', '.join(dead)} exited; stopping the cluster", file=sys.stderr)
            cluster.stop()
            sys.exit(1)
    print("loot: stopping…", flush=True)
    cluster.stop()


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
