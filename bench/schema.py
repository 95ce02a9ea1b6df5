"""Cost of the schema claim per request (docs/schema.md), beside plain SQLite in the same run.

  python bench/schema.py

- unchanged: apply() of the schema a database already has (every request's case),
  against one `PRAGMA schema_version` query on the same connection;
- first apply / full re-check of a 40-table schema (with indexes, views, filters),
  against building the same schema in a fresh in-memory SQLite; and the part of
  building a claim new to the shard that checks its filter and rule rows.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import apsw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loot.shard import schema  # noqa: E402
from loot.shard.access import policy_check  # noqa: E402
from loot.shard.schema import pristine, validate  # noqa: E402
from loot.shard.storage import Storage  # noqa: E402

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


def timed(runs: int, work: Callable[[int], object]) -> float:
    """Best of `runs` timings of work(run): the least disturbed by other work on the machine."""
    times = []
    for run in range(runs):
        start = time.perf_counter()
        work(run)
        times.append(time.perf_counter() - start)
    return min(times)


def per_call(work: Callable[[], object], batches: int = 20, calls: int = 5_000) -> float:
    """Best batch's time per call, so a burst of other work on the machine does not count."""
    return timed(batches, lambda _: [work() for _ in range(calls)]) / calls


def main() -> None:
    text = claim()
    plain = text.replace("INSERT INTO _filters", "CREATE TABLE IF NOT EXISTS _filters (a, b, c); INSERT INTO _filters")
    storage = Storage(Path(tempfile.mkdtemp()))
    runs = 20
    fresh = [storage.open(f"{n:064x}").conn for n in range(1, runs + 1)]
    cold = [storage.open(f"{n:064x}").conn for n in range(2 * runs + 1, 3 * runs + 1)]
    files = [storage.open(f"{n:064x}").conn for n in range(runs + 1, 2 * runs + 1)]
    conn = storage.open(f"{0:064x}").conn
    schema.apply(conn, text)

    def in_memory(_: int) -> None:
        apsw.Connection(":memory:").execute(plain)

    def in_a_file(run: int) -> None:
        files[run].execute(f"BEGIN IMMEDIATE; {plain}; COMMIT")

    def bump() -> None:
        conn.execute("CREATE TABLE IF NOT EXISTS bump (x); DROP TABLE bump")  # privileged DDL moves schema_version

    def recheck(_: int) -> None:
        bump()
        schema.apply(conn, text)

    def cold_recheck(_: int) -> None:
        bump()
        pristine._built.clear()  # as if this shard had not built the claim yet
        schema.apply(conn, text)

    def variant(run: int) -> str:
        return f"{text}\n-- variant {run}"  # same schema, a claim text the shard has not built yet

    memory = timed(runs, in_memory)
    file = timed(runs, in_a_file)
    first_cold = timed(runs, lambda run: schema.apply(cold[run], variant(run)))
    first = timed(runs, lambda run: schema.apply(fresh[run], text))
    built = validate.build(text)
    policy = timed(runs, lambda _: policy_check.refusals(built))  # part of building a claim new to the shard
    bumped = timed(runs, lambda _: bump())
    checked = timed(runs, recheck) - bumped
    checked_cold = timed(runs, cold_recheck) - bumped
    pragma = per_call(lambda: conn.execute("PRAGMA main.schema_version").fetchone())
    encoded = text.encode()
    # Each request decodes a fresh claim string from its protobuf: the fast path must not rely on a cached hash.
    unchanged = per_call(lambda: schema.apply(conn, encoded.decode()))

    print(f"schema: {TABLES} tables, {text.count(';')} statements, {len(text)} bytes")
    print(f"{'baseline A: build it in a fresh in-memory SQLite':58} {memory * 1e3:7.2f} ms")
    print(f"{'baseline B: build it in a fresh file (WAL, sync FULL), 1 txn':58} {file * 1e3:7.2f} ms")
    for label, cost in (("first apply, claim new to the shard", first_cold),
                        ("first apply, claim already built for another tenant", first),
                        ("full re-check after privileged DDL, claim new to the shard", checked_cold),
                        ("full re-check after privileged DDL, claim already built", checked)):
        print(f"{label:58} {cost * 1e3:7.2f} ms = {cost / memory:4.1f}x A, {cost / file:4.1f}x B")
    print(f"{'of a claim new to the shard: its filters and rules checked':58} {policy * 1e3:7.2f} ms = {policy / memory:4.1f}x A")
    print(f"{'baseline C: one PRAGMA schema_version':58} {pragma * 1e6:7.2f} us")
    print(f"{'unchanged schema, per request':58} {unchanged * 1e6:7.2f} us = {unchanged / pragma:4.1f}x C")


if __name__ == "__main__":
    main()
