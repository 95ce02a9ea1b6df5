"""`loot restore-shard`: every database of a shard that lost its disk, from the replica, before it starts.

The shard's catalog is replicated beside its databases (loot/shard/replicator.py): restored first,
it lists the databases the shard held and whose they are; each is then restored into the layout
storage reads. The shard must be stopped; its directory must hold no database yet (start it only
after: a database touched first would be made anew, empty, and replicated as the latest state).
"""

from __future__ import annotations

import argparse
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from loot.cli.target import UserError
from loot.shard.backup import databases
from loot.shard.catalog import FILE as CATALOG
from loot.shard.replica_restore import restore, restore_url
from loot.shard.replica_target import ReplicaTarget, parse_target
from loot.shard.storage import database_path
from loot.status import Fault


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", required=True, help="the shard's name (its --name), e.g. shard-0")
    parser.add_argument("--data", type=Path, required=True,
                        help="the stopped shard's data directory (its --data): new, or holding no database")
    parser.add_argument("--replica", required=True, help="the shards' --replica: a directory or s3://bucket/prefix")
    parser.add_argument("--replica-endpoint", default="", help="the shards' --replica-endpoint, if any")
    parser.add_argument("--at", default="latest",
                        help="restore the shard as of this time (ISO 8601), or `latest` (default)")
    parser.add_argument("--concurrency", type=int, default=4, help="databases restored at once (default 4)")


def run(args: argparse.Namespace) -> None:
    if args.concurrency < 1:
        raise UserError("--concurrency must be at least 1")
    try:
        target = parse_target(args.replica, args.replica_endpoint)
    except ValueError as error:
        raise UserError(str(error)) from None
    timestamp = "" if args.at == "latest" else args.at
    args.data.mkdir(parents=True, exist_ok=True)
    _check_empty(args.data)
    catalog = args.data / CATALOG
    for leftover in (catalog, Path(f"{catalog}-wal"), Path(f"{catalog}-shm")):
        leftover.unlink(missing_ok=True)  # an empty one, from a start on the new disk (_check_empty)
    try:
        restore_url(target.catalog_url(args.name), f"{args.name}'s catalog", catalog, timestamp)
    except Fault as error:
        raise UserError(str(error)) from None
    ids = _catalogued(catalog)
    missing = _restore_all(target, args.data, ids, timestamp, args.concurrency)
    if missing:
        _forget(catalog, missing)
    print(f"restored {len(ids) - len(missing)} of the {len(ids)} databases {args.name} held into {args.data}"
          + (f"; {len(missing)} had no replicated state (made within the replication lag of the loss)"
             if missing else ""))


def _check_empty(data: Path) -> None:
    if databases(data):
        raise UserError(f"{data} holds databases already; restore-shard fills an empty directory")
    catalog = data / CATALOG
    if catalog.exists() and _catalogued(catalog):
        raise UserError(f"{catalog} lists databases already; restore-shard fills an empty directory")


def _catalogued(catalog: Path) -> list[str]:
    with sqlite3.connect(catalog) as conn:
        try:
            return [row[0] for row in conn.execute("SELECT database_id FROM databases")]
        except sqlite3.OperationalError:  # no table yet: a catalog never written
            return []


def _restore_all(target: ReplicaTarget, data: Path, ids: list[str], timestamp: str, concurrency: int) -> list[str]:
    """Restore each database; return those the replica had nothing of."""
    def one(database_id: str) -> str | None:
        path = database_path(data, database_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            restore(target, database_id, path, timestamp)
        except Fault as error:
            if error.reason != "NO_REPLICA":
                raise UserError(str(error)) from None
            return database_id
        return None

    with ThreadPoolExecutor(concurrency) as pool:
        return [database_id for database_id in pool.map(one, ids) if database_id is not None]


def _forget(catalog: Path, ids: list[str]) -> None:
    with sqlite3.connect(catalog) as conn:
        conn.executemany("DELETE FROM databases WHERE database_id = ?", [(database_id,) for database_id in ids])
