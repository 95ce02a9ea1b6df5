"""`loot backup`: consistent copies of a shard's databases while it serves."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from loot.shard.backup import snapshot_all


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, help="the shard's data directory (its --data)")
    parser.add_argument("--out", type=Path, required=True, help="an empty or new directory for the copies")


def run(args: argparse.Namespace) -> None:
    if not args.data.is_dir():
        sys.exit(f"loot: {args.data} is not a directory")
    if args.out.exists() and any(args.out.iterdir()):
        sys.exit(f"loot: {args.out} is not empty; back up into a new directory")
    copied = snapshot_all(args.data, args.out)
    print(f"backed up {copied} database(s) from {args.data} to {args.out}")
