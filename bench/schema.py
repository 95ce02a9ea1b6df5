"""Cost of the schema claim per request (SPEC §4), beside plain SQLite in the same run.

  python bench/schema.py

- unchanged: apply() of the schema a database already has (every request's case),
  against one `PRAGMA schema_version` query on the same connection;
- first apply / full re-check of a 40-table schema (with indexes, views, filters),
  against building the same schema in a fresh in-memory SQLite.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import apsw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shard import schema  # noqa: E402
from shard.storage import Storage  # noqa: E402

TABLES = 40


def claim() -> str:
    parts = []
    for n in range(TABLES):
        parts.append(f"CREATE TABLE t{n} (id INTEGER PRIMARY KEY, owner TEXT NOT NULL DEFAULT '', title TEXT, "
                     f"body TEXT, stars INTEGER CHECK (stars >= 0), created TEXT, parent INTEGER REFERENCES t{n}(id), "
                     f"UNIQUE (owner, title));")
        parts.append(f"CREATE INDEX t{n}_by_owner ON t{n} (owner, created);")
        parts.append(f"CREATE VIEW t{n}_starred AS SELECT id, title FROM t{n} WHERE stars > 3;")
        parts.append(f"INSERT INTO _filters VALUES ('t{n}', 'mine', 'owner = claim(''sub'')');")
    return "\n".join(parts)


def best_of(runs: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def per_call(calls: int, work: Callable[[], object]) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        work()
    return (time.perf_counter() - start) / calls


def main() -> None:
    text = claim()
    root = Path(tempfile.mkdtemp())
    storage = Storage(root)
    ids = iter(f"{n:064x}" for n in range(1, 1000))

    def fresh_sqlite() -> None:
        conn = apsw.Connection(":memory:")
        conn.execute(text.replace("INSERT INTO _filters", "CREATE TABLE IF NOT EXISTS _filters (a, b, c); INSERT INTO _filters"))
        conn.close()

    def first_apply() -> None:
        conn = storage.open(next(ids))
        schema.apply(conn, text)
        conn.close()

    def open_only() -> None:
        storage.open(next(ids)).close()

    conn = storage.open(next(ids))
    schema.apply(conn, text)

    def recheck() -> None:
        conn.execute("CREATE TABLE IF NOT EXISTS bump (x); DROP TABLE bump")  # a privileged change: schema_version moves
        schema.apply(conn, text)

    def bump_only() -> None:
        conn.execute("CREATE TABLE IF NOT EXISTS bump (x); DROP TABLE bump")

    baseline = best_of(20, fresh_sqlite)
    opened = best_of(20, open_only)
    first = best_of(20, first_apply)
    bumped = best_of(20, bump_only)
    checked = best_of(20, recheck)
    pragma = per_call(100_000, lambda: conn.execute("PRAGMA main.schema_version").fetchone())
    unchanged = per_call(100_000, lambda: schema.apply(conn, text))

    first_cost = first[0] - opened[0]
    recheck_cost = checked[0] - bumped[0]
    print(f"schema: {TABLES} tables, {text.count(';')} statements, {len(text)} bytes")
    print(f"baseline  build it in a fresh in-memory SQLite: {baseline[0] * 1e3:7.2f} ms")
    print(f"first apply (new file, minus opening it):       {first_cost * 1e3:7.2f} ms  = {first_cost / baseline[0]:5.1f}x baseline")
    print(f"full re-check after a privileged change:        {recheck_cost * 1e3:7.2f} ms  = {recheck_cost / baseline[0]:5.1f}x baseline")
    print(f"baseline  one PRAGMA schema_version:            {pragma * 1e6:7.2f} us")
    print(f"unchanged schema, per request:                  {unchanged * 1e6:7.2f} us  = {unchanged / pragma:5.1f}x the PRAGMA")


if __name__ == "__main__":
    main()
