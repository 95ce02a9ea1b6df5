"""A warm point select through `engine.run` on one open database, in process: the shard's
per-request work with no gRPC and no thread hop, against the bare apsw query as the baseline.

    python bench/engine_point_select.py [--calls 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.point_select import SCHEMA  # noqa: E402
from loot.ids import database_id  # noqa: E402
from loot.internal.v1 import shard_pb2  # noqa: E402
from loot.v1 import database_pb2 as pb  # noqa: E402
from loot.values import to_value  # noqa: E402
from loot.shard import engine  # noqa: E402
from loot.shard.storage import OpenDatabase, Storage  # noqa: E402

SQL = "SELECT id, body, score FROM notes WHERE id = ?"
CLAIMS = '{"sub": "user-1", "roles": ["reader"], "org": {"id": 7}}'


def per_call_us(call, calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - started) / calls * 1e6


def warm_point_select(root: str) -> tuple[OpenDatabase, Callable[[], engine.Outcome]]:
    """An open database under `root` holding row 42, and a call running the point select on it."""
    database = Storage(Path(root)).open(database_id("bench", "engine", "warm"), SCHEMA)
    context = shard_pb2.Context(schema=SCHEMA, claims_json=CLAIMS)
    statements = [pb.Statement(sql=SQL, params=[to_value(42)])]
    database.conn.execute("INSERT INTO main.notes VALUES (42, 'hello', 1.5)")
    return database, lambda: engine.run(database, context, statements, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        database, engine_call = warm_point_select(root)
        bare_call = lambda: database.conn.execute(SQL, (42,)).fetchall()  # noqa: E731
        engine_call()
        engine_us, bare_us = [], []
        for _ in range(args.rounds):
            engine_us.append(per_call_us(engine_call, args.calls))
            bare_us.append(per_call_us(bare_call, args.calls))
        database.close()
    engine_median, bare_median = statistics.median(engine_us), statistics.median(bare_us)
    print(f"engine.run point select: {engine_median:.1f} µs/call (median of {args.rounds} rounds)")
    print(f"bare apsw point select:  {bare_median:.1f} µs/call")
    print(f"ratio bare/engine:       {bare_median / engine_median:.3f}")


if __name__ == "__main__":
    main()
