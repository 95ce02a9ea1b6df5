"""First touch of new databases with a 5-table schema, in one shard process,
the first request an INSERT:

- shard: the shard's path (Databases + engine, each database a copy of the
  schema's template file entered in the shard's catalog, access control
  installed, the LRU closing them);
- naive: open a new file, run the schema's DDL, then the INSERT;
- floor: bare SQLite on a file already made (rename it into place, open, the
  INSERT, close): no creation, no access control — what the disk and SQLite
  alone cost per new database, the ceiling of any design with one WAL file each.

All three on the same number of worker threads, in rounds that alternate, so
that the load other jobs put on the machine weighs on each alike. Each line
gives the best round's rate and the process CPU per database in that round.

    python bench/first_touch.py [--databases 2000] [--rounds 3] [--threads 8] [--durability full|normal]

Target: >= 2,000 new databases/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import apsw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from loot.ids import database_id  # noqa: E402
from loot.internal.v1 import shard_pb2  # noqa: E402
from loot.v1 import database_pb2 as pb  # noqa: E402
from loot.shard import engine, system_tables  # noqa: E402
from loot.shard.catalog import Identity  # noqa: E402
from loot.shard.databases import Databases  # noqa: E402
from loot.shard.limits import Limits  # noqa: E402
from loot.shard.storage import SPARE_COPIES, Storage  # noqa: E402

SCHEMA = """
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT, created INTEGER NOT NULL DEFAULT 0);
CREATE TABLE projects (id INTEGER PRIMARY KEY, owner INTEGER NOT NULL REFERENCES users (id), title TEXT NOT NULL);
CREATE TABLE tasks (id INTEGER PRIMARY KEY, project INTEGER NOT NULL REFERENCES projects (id), body TEXT, done INTEGER NOT NULL DEFAULT 0);
CREATE TABLE comments (id INTEGER PRIMARY KEY, task INTEGER NOT NULL REFERENCES tasks (id), author INTEGER, body TEXT);
CREATE TABLE tags (task INTEGER NOT NULL REFERENCES tasks (id), tag TEXT NOT NULL, PRIMARY KEY (task, tag));
CREATE INDEX tasks_by_project ON tasks (project, done);
INSERT INTO _filters VALUES ('users', 'own', 'id = claim(''user.id'') OR claim(''user.id'') IS NULL');
INSERT INTO _rules VALUES ('users', 'write', 'anyone', 'true');
"""
FIRST = "INSERT INTO users (email, name) VALUES ('a@example.com', 'A')"
METHODS = ("shard", "naive", "floor")


@dataclass
class Round:
    rate: float  # new databases per second
    cpu: float  # process CPU seconds per new database


def measured(work: Callable[[], None], count: int) -> Round:
    cpu, started = _cpu(), time.perf_counter()
    work()
    return Round(count / (time.perf_counter() - started), (_cpu() - cpu) / count)


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


class ShardPath:
    """The shard's own path; one storage for every round, so the template is built once, untimed."""

    def __init__(self, data: Path, threads: int, durability: str):
        self.limits = Limits(durability=durability)
        self.storage = Storage(data, self.limits, SPARE_COPIES, catalog=True)  # as the shard server makes it
        self.threads = threads
        self.statements = [pb.Statement(sql=FIRST)]

    def run(self, tenants: list[str]) -> Round:
        return asyncio.run(self._run(tenants))

    async def _run(self, tenants: list[str]) -> Round:
        databases = Databases(self.storage, self.limits, threads=self.threads)
        await self._touch(databases, f"warm-{tenants[0]}")  # builds the template, as the first database of a schema does
        gate = asyncio.Semaphore(self.threads * 4)

        async def gated(tenant: str) -> None:
            async with gate:
                await self._touch(databases, tenant)

        cpu, started = _cpu(), time.perf_counter()
        await asyncio.gather(*(gated(tenant) for tenant in tenants))
        await databases.close()  # closing (the checkpoint) is part of each database's cost
        return Round(len(tenants) / (time.perf_counter() - started), (_cpu() - cpu) / len(tenants))

    async def _touch(self, databases: Databases, tenant: str) -> None:
        context = shard_pb2.Context(database_id=database_id("bench", "app", tenant), account="bench", name="app",
                                    tenant=tenant, schema=SCHEMA)
        await databases.run(context.database_id,
                            lambda database: engine.run(database, context, self.statements, None), SCHEMA,
                            identity=Identity("bench", "app", tenant))


def naive(data: Path, tenants: list[str], threads: int, durability: str) -> Round:
    def create(tenant: str) -> None:
        conn = apsw.Connection(str(data / f"naive-{tenant}.sqlite"))
        conn.execute("PRAGMA journal_mode=WAL").fetchall()
        conn.execute(f"PRAGMA synchronous={durability}; PRAGMA foreign_keys=ON")
        with conn:
            conn.execute(system_tables.DDL + SCHEMA)
        with conn:
            conn.execute(FIRST)
        conn.close()

    with ThreadPoolExecutor(threads) as pool:
        return measured(lambda: list(pool.map(create, tenants)), len(tenants))


def floor(data: Path, tenants: list[str], threads: int, durability: str) -> Round:
    made = data / "made"
    made.mkdir(exist_ok=True)
    template = made / "template.sqlite"
    if not template.exists():
        conn = apsw.Connection(str(template))
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(system_tables.DDL + SCHEMA)
        conn.close()
    image = template.read_bytes()
    for tenant in tenants:  # made and synced before the clock starts
        (made / tenant).write_bytes(image)
    os.sync()

    def touch(tenant: str) -> None:
        path = data / f"floor-{tenant}.sqlite"
        os.rename(made / tenant, path)
        conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READWRITE)
        conn.execute(f"PRAGMA journal_mode=WAL; PRAGMA synchronous={durability}; PRAGMA foreign_keys=ON")
        with conn:
            conn.execute(FIRST)
        conn.close()

    with ThreadPoolExecutor(threads) as pool:
        return measured(lambda: list(pool.map(touch, tenants)), len(tenants))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--databases", type=int, default=2000, help="new databases per method and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--durability", choices=["full", "normal"], default="full")
    args = parser.parse_args()
    rounds: dict[str, list[Round]] = {method: [] for method in METHODS}
    with tempfile.TemporaryDirectory() as shard_data, tempfile.TemporaryDirectory() as other_data:
        shard = ShardPath(Path(shard_data), args.threads, args.durability)
        for number in range(args.rounds):
            tenants = [f"r{number}-t{i}" for i in range(args.databases)]
            rounds["shard"].append(shard.run(tenants))
            rounds["naive"].append(naive(Path(other_data), tenants, args.threads, args.durability))
            rounds["floor"].append(floor(Path(other_data), tenants, args.threads, args.durability))
    best = {method: max(found, key=lambda r: r.rate) for method, found in rounds.items()}
    print(f"first touch of {args.databases} new databases x {args.rounds} rounds, 5-table schema, "
          f"{args.threads} threads, durability {args.durability}; best round, and its process CPU per database")
    labels = {"shard": "shard (template copy)", "naive": "naive (DDL per database)",
              "floor": "floor (bare SQLite, file made)"}
    for method in METHODS:
        spread = ", ".join(f"{r.rate:.0f}" for r in rounds[method])
        print(f"  {labels[method]:32}: {best[method].rate:6.0f} databases/s  {best[method].cpu * 1e6:6.0f} us CPU "
              f"(rounds {spread})")
    print(f"  shard / naive: {best['shard'].rate / best['naive'].rate:.2f}   "
          f"shard / floor: {best['shard'].rate / best['floor'].rate:.2f}   (target >= 2000 databases/s)")


if __name__ == "__main__":
    main()
