"""First touch of new databases with a 5-table schema, in one shard process:
the shard's path (Databases + engine, databases created from the schema's
template file) against naive creation (open a new file, run the schema's DDL),
both on the same number of worker threads, in the same run.

    python bench/first_touch.py [--databases 2000] [--threads 8] [--durability full|normal]

Target: >= 2,000 new databases/s.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import apsw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from loot.ids import database_id  # noqa: E402
from loot.internal.v1 import shard_pb2  # noqa: E402
from loot.v1 import database_pb2 as pb  # noqa: E402
from shard import engine, system_tables  # noqa: E402
from shard.databases import Databases  # noqa: E402
from shard.limits import Limits  # noqa: E402
from shard.storage import Storage  # noqa: E402

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


def shard_path(data: Path, count: int, threads: int, durability: str) -> float:
    limits = Limits(durability=durability)
    databases = Databases(Storage(data, limits), limits, threads=threads)
    statements = [pb.Statement(sql=FIRST)]

    async def touch(i: int) -> None:
        tenant = f"tenant-{i}"
        context = shard_pb2.Context(database_id=database_id("bench", "app", tenant), account="bench", name="app",
                                    tenant=tenant, schema=SCHEMA)
        await databases.run(context.database_id,
                            lambda database: engine.run(database, context, statements, None), SCHEMA)

    async def all_of_them() -> float:
        await touch(-1)  # builds the template, as the first database of a schema does
        gate = asyncio.Semaphore(threads * 4)

        async def gated(i: int) -> None:
            async with gate:
                await touch(i)

        started = time.perf_counter()
        await asyncio.gather(*(gated(i) for i in range(count)))
        rate = count / (time.perf_counter() - started)
        await databases.close()
        return rate

    return asyncio.run(all_of_them())


def naive(data: Path, count: int, threads: int, durability: str) -> float:
    def create(i: int) -> None:
        conn = apsw.Connection(str(data / f"naive-{i}.sqlite"))
        conn.execute("PRAGMA journal_mode=WAL").fetchall()
        conn.execute(f"PRAGMA synchronous={durability}; PRAGMA foreign_keys=ON")
        with conn:
            conn.execute(system_tables.DDL + SCHEMA)
        with conn:
            conn.execute(FIRST)
        conn.close()

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(create, range(count)))
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--databases", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--durability", choices=["full", "normal"], default="full")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as shard_data, tempfile.TemporaryDirectory() as naive_data:
        shard_rate = shard_path(Path(shard_data), args.databases, args.threads, args.durability)
        naive_rate = naive(Path(naive_data), args.databases, args.threads, args.durability)
    print(f"first touch of {args.databases} new databases, 5-table schema, {args.threads} threads, "
          f"durability {args.durability}")
    print(f"  shard (template copy)   : {shard_rate:8.0f} databases/s  (target >= 2000)")
    print(f"  naive (DDL per database): {naive_rate:8.0f} databases/s")
    print(f"  ratio                   : {shard_rate / naive_rate:8.2f}")


if __name__ == "__main__":
    main()
