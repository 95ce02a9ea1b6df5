"""The value-operations budget (loot/shard/value_work.py): what it costs the hot path, and what it bounds.

    python bench/value_operations.py [--calls 20000] [--rounds 5]

1. Requests through `engine.run` on one open database, in process, with the program check as built
   against the same requests with it switched off, rounds interleaved: a point select (not read: no `(`)
   and one calling upper and || (its program is read). Ratio off/on: 1.0 means free.
2. For each kind of operation on values of the shard's largest size (16 MiB, SQLITE_LIMIT_LENGTH), the
   longest row of it the default budget accepts, timed: about the most one uninterruptible step of an
   accepted statement can take, against the default statement limit.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import apsw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.engine_point_select import CLAIMS, per_call_us  # noqa: E402
from bench.point_select import SCHEMA  # noqa: E402
from loot.ids import database_id  # noqa: E402
from loot.internal.v1 import shard_pb2  # noqa: E402
from loot.shard import engine, value_work  # noqa: E402
from loot.shard.limits import Limits  # noqa: E402
from loot.shard.storage import Storage  # noqa: E402
from loot.v1 import database_pb2 as pb  # noqa: E402
from loot.status import Fault  # noqa: E402
from loot.values import to_value  # noqa: E402

SELECT = pb.Statement(sql="SELECT id, body, score FROM notes WHERE id = ?", params=[to_value(42)])
FLAGGED = pb.Statement(sql="SELECT id, upper(body) || '!' FROM notes WHERE id = ?", params=[to_value(42)])
LIMITS = Limits()
BIG = 16_000_000  # just under the value limit (16 MiB): printf refuses a value of exactly the limit
# One operation on a maximal value, each kind: the term and where its value comes from (a constant subquery's
# value is computed once; LIMIT keeps SQLite from copying the subquery into each use).
DIGITS = f"FROM (SELECT printf('%.*c', {BIG}, '1') AS v, printf('%.*c', {BIG}, '1') AS w LIMIT 1)"
KINDS = [
    ("randomblob", f"length(randomblob({BIG}))", ""),
    ("printf", f"length(printf('%.*c', {BIG}, 'a' || column1))", "FROM (VALUES (''))"),
    ("hex of half", "length(hex(v))", f"FROM (SELECT randomblob({BIG // 2}) AS v)"),
    ("upper", "length(upper(v))", f"FROM (SELECT printf('%.*c', {BIG}, 'a') AS v)"),
    ("quote of half", "length(quote(v))", f"FROM (SELECT randomblob({BIG // 2 - 2}) AS v)"),
    ("substr", "length(substr(v, 2))", f"FROM (SELECT printf('%.*c', {BIG}, 'a') AS v)"),
    ("|| of halves", "length(v || v)", f"FROM (SELECT printf('%.*c', {BIG // 2}, 'a') AS v)"),
    ("arithmetic on digits", "(v + 0)", DIGITS),
    ("cast of digits", "CAST(v AS REAL)", DIGITS),
    ("truth test of digits", "(v AND w)", DIGITS),
    ("comparison", "(v < w)", DIGITS),
]


def hot_path(calls: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as root:
        database = Storage(Path(root)).open(database_id("bench", "values", "warm"), SCHEMA)
        database.conn.execute("INSERT INTO main.notes VALUES (42, 'hello', 1.5)")
        context = shard_pb2.Context(schema=SCHEMA, claims_json=CLAIMS)
        checked = value_work.may_be_costly
        for name, statement in (("point select", SELECT), ("point select with upper and ||", FLAGGED)):
            call = lambda: engine.run(database, context, [statement], None)  # noqa: E731
            call()
            on, off = [], []
            for _ in range(rounds):
                value_work.may_be_costly = checked
                on.append(per_call_us(call, calls))
                value_work.may_be_costly = lambda sql: False
                off.append(per_call_us(call, calls))
            value_work.may_be_costly = checked
            print(f"{name}: {statistics.median(on):.1f} µs/call checked, {statistics.median(off):.1f} unchecked, "
                  f"ratio unchecked/checked {statistics.median(off) / statistics.median(on):.3f}")
        database.close()


def one_step_costs() -> None:
    """Each kind: the longest row of it the budget accepts, timed (less building its values)."""
    conn = apsw.Connection(":memory:")
    conn.limit(apsw.SQLITE_LIMIT_LENGTH, LIMITS.result_bytes)
    for name, term, source in KINDS:
        count = _most_accepted(conn, term, source)
        base = min(_seconds(conn, f"SELECT 1 {source}") for _ in range(3))  # building the values
        whole = _seconds(conn, _row(term, count, source)) - base
        print(f"{name}: {count} in one row (the most accepted) {whole:.2f} s, "
              f"{whole / LIMITS.statement_seconds:.2f} x the default {LIMITS.statement_seconds:g} s statement limit")


def _row(term: str, count: int, source: str) -> str:
    return f"SELECT {' + '.join([term] * count)} {source}"


def _most_accepted(conn: apsw.Connection, term: str, source: str) -> int:
    count = 1
    while _accepted(conn, _row(term, count + 1, source)):
        count += 1
    return count


def _accepted(conn: apsw.Connection, sql: str) -> bool:
    try:
        value_work.check(conn, sql, None, LIMITS.value_operations, 0, object())
    except Fault:
        return False
    return True


def _seconds(conn: apsw.Connection, sql: str) -> float:
    started = time.perf_counter()
    conn.execute(sql).fetchall()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    hot_path(args.calls, args.rounds)
    one_step_costs()


if __name__ == "__main__":
    main()
