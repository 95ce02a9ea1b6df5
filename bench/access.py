"""Benchmark: what row-level filters cost a point read (issue 6).

A point read by primary key on a table filtered by `owner = claim('sub')`
(owner is indexed) against the same read on an identical table whose filter
is 'true', in the same run, through loot/shard/access exactly as the engine runs a
request. Also the "list my rows" read, where the filter itself should use the
owner index. Prints the query plans and the ratios. Run: python bench/access.py

The same reads calling a function that is not leakproof (`abs`) go through the
barrier views (docs/access.md): their baseline is the read the index-friendly
view used to make of them, the filter written by hand on the open table
(`... AND owner = ?`), so the ratio is what the barrier costs.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import apsw

from loot.shard import system_tables
from loot.shard.access.enforcer import Enforcer
from loot.shard.access.request import run_request

ROWS = 100_000
OWNERS = 1_000
REQUESTS = 3_000
READS_PER_REQUEST = 1_000
ROUNDS = 9

SCHEMA = """
CREATE TABLE {t} (id INTEGER PRIMARY KEY, owner TEXT NOT NULL, body TEXT);
CREATE INDEX {t}_owner ON {t} (owner);
"""
FILTERS = """
INSERT INTO _filters VALUES ('filtered', 'own', 'owner = claim(''sub'')');
INSERT INTO _filters VALUES ('open', 'all', 'true');
"""


def build(path: Path) -> apsw.Connection:
    conn = apsw.Connection(str(path))
    conn.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL")
    system_tables.create(conn)
    rows = [(i, f"user-{i % OWNERS}", f"body {i}") for i in range(1, ROWS + 1)]
    with conn:
        for table in ("filtered", "open"):
            conn.execute(SCHEMA.format(t=table))
            conn.executemany(f"INSERT INTO {table} VALUES (?, ?, ?)", rows)
        conn.execute(FILTERS)
    return conn


def request(conn: apsw.Connection, sub: str, work: Callable[[Enforcer], object]) -> object:
    return run_request(conn, claims_json=json.dumps({"sub": sub}), readonly=False, before="", after="",
                       statements=work)


def read(access: Enforcer, sql: str, params: tuple) -> list[tuple]:
    with access.statement(sql) as rewritten:
        return access.conn.execute(rewritten, params).fetchall()


def point_reads(table: str, ids: list[int], per_request: int, where: str = "id = ?") -> Callable[[apsw.Connection], None]:
    """Reads by primary key; `where` may add terms, given `?` for the id and `:sub` for the token's subject."""
    sql = f"SELECT id, owner, body FROM {table} WHERE {where}"

    def run(conn: apsw.Connection) -> None:
        for start in range(0, len(ids), per_request):
            batch = ids[start:start + per_request]
            sub = f"user-{batch[0] % OWNERS}"
            found = request(conn, sub, lambda access: [read(access, sql, _params(sql, i, sub)) for i in batch])
            assert found[0] and found[0][0][1] == sub, "the bench reads rows its token may see"

    return run


def _params(sql: str, row_id: int, sub: str) -> tuple | dict:
    return {"id": row_id, "sub": sub} if ":sub" in sql else (row_id,)


def list_mine(sql: str) -> Callable[[apsw.Connection], None]:
    def run(conn: apsw.Connection) -> None:
        assert len(request(conn, "user-7", lambda access: read(access, sql, ()))) == ROWS // OWNERS

    return run


def timed(conn: apsw.Connection, work: Callable[[apsw.Connection], None]) -> float:
    """CPU seconds `work` takes: the work is CPU-bound, and other processes on a busy machine do not count."""
    started = time.process_time()
    work(conn)
    return time.process_time() - started


def compare(conn: apsw.Connection, label: str, filtered: Callable, baseline: Callable, count: int) -> None:
    """Best of ROUNDS for each, the two interleaved so a busy machine slows both alike."""
    timed(conn, filtered), timed(conn, baseline)  # warm up caches and the TEMP objects
    rounds = [(timed(conn, filtered), timed(conn, baseline)) for _ in range(ROUNDS)]
    filtered_time, baseline_time = min(f for f, _ in rounds), min(b for _, b in rounds)
    print(f"{label}: filtered {filtered_time / count * 1e6:.1f} µs, 'true' {baseline_time / count * 1e6:.1f} µs,"
          f" ratio {filtered_time / baseline_time:.2f}x")


def plan(conn: apsw.Connection, sql: str, params: tuple | dict) -> str:
    found = request(conn, "user-1", lambda access: read(access, f"EXPLAIN QUERY PLAN {sql}", params))
    return "; ".join(row[3] for row in found)


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        conn = build(Path(directory) / "bench.sqlite")
        ids = random.Random(1).choices(range(1, ROWS + 1), k=REQUESTS)
        print(f"{ROWS} rows per table, {OWNERS} owners; best of {ROUNDS} rounds")
        print("plan, filtered point read:", plan(conn, "SELECT * FROM filtered WHERE id = ?", (1,)))
        print("plan, filtered list-mine: ", plan(conn, "SELECT * FROM filtered", ()))
        compare(conn, "point read, one per request",
                point_reads("filtered", ids, 1), point_reads("open", ids, 1), REQUESTS)
        same_owner = [i for i in range(1, ROWS + 1) if i % OWNERS == 7][:READS_PER_REQUEST // 10] * 10
        compare(conn, f"point read, {len(same_owner)} in one request",
                point_reads("filtered", same_owner, len(same_owner)), point_reads("open", same_owner, len(same_owner)),
                len(same_owner))
        compare(conn, "list my 100 rows", list_mine("SELECT * FROM filtered"),
                list_mine("SELECT * FROM open WHERE owner = 'user-7'"), 1)
        leaky = "id = :id AND abs(id) > 0"
        print("plan, barrier point read:", plan(conn, f"SELECT * FROM filtered WHERE {leaky}", {"id": 1}))
        compare(conn, "barrier: point read calling abs(), one per request",
                point_reads("filtered", ids, 1, leaky), point_reads("open", ids, 1, f"{leaky} AND owner = :sub"),
                REQUESTS)
        compare(conn, "barrier: list my 100 rows calling abs()", list_mine("SELECT * FROM filtered WHERE abs(id) > 0"),
                list_mine("SELECT * FROM open WHERE owner = 'user-7' AND abs(id) > 0"), 1)


if __name__ == "__main__":
    main()
