"""`loot scale`: change the number of shards of a running `loot up`, moving databases online."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from loot.cli import scale_requests


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=Path("loot-data"), help="the data directory of the running `loot up`")
    parser.add_argument("--shards", type=int, required=True, help="the number of shards to run")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for the databases to move")


def run(args: argparse.Namespace) -> None:
    if args.shards < 1:
        sys.exit("loot: --shards must be at least 1")
    try:
        request = scale_requests.ask(args.data, args.shards)
    except RuntimeError as error:
        sys.exit(f"loot: {error}; start it with `loot up --data {args.data}`")
    deadline, shown = time.monotonic() + args.timeout, None
    while True:
        status = scale_requests.status(args.data, request)
        line = _progress(status) if status else None
        if line and line != shown:
            print(line, flush=True)
            shown = line
        if status and status["done"]:
            if status["error"]:
                sys.exit(f"loot: scaling failed: {status['error']}")
            print(f"done: {args.shards} shard(s) at membership epoch {status['epoch']}", flush=True)
            return
        if time.monotonic() > deadline:
            sys.exit(f"loot: the databases did not finish moving within {args.timeout:.0f}s (`loot up` keeps going)")
        time.sleep(0.2)


def _progress(status: dict) -> str:
    parts = []
    for name, shard in status["shards"].items():
        if shard is None:
            parts.append(f"{name} starting")
        else:
            state = "settled" if shard["settled"] and shard["epoch"] == status["epoch"] else f"to pull {shard['to_pull']}"
            parts.append(f"{name} {state}, pulled {shard['pulled']}, handed off {shard['handed_off']}, "
                         f"failed {shard['failed']}")
    return f"epoch {status['epoch']}: " + "; ".join(parts)
