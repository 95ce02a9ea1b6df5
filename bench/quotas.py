"""What the per-account quotas cost on a shard's path, in process (Databases + engine, catalog kept, as
the shard server makes them): a warm point select (served on the event loop), a one-row INSERT (on a
worker, its database's page limit set from the account's room) and a first touch (a new database,
admitted against the account's share), each with quotas off and with both quotas set (never reached),
in alternating rounds so other jobs' load weighs on both alike. Prints the best round's process CPU
time per call (all threads: the event loop's and the workers'; less swayed by other jobs than wall
time) and the ratio on / off.

    python bench/quotas.py [--calls 5000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from loot.ids import database_id  # noqa: E402
from loot.internal.v1 import shard_pb2  # noqa: E402
from loot.membership import Membership, MembershipSource  # noqa: E402
from loot.shard import engine  # noqa: E402
from loot.shard.catalog import Identity  # noqa: E402
from loot.shard.databases import Databases  # noqa: E402
from loot.shard.limits import Limits  # noqa: E402
from loot.shard.quotas import Quotas  # noqa: E402
from loot.shard.storage import Storage  # noqa: E402
from loot.v1 import database_pb2 as pb  # noqa: E402

SCHEMA = """CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
INSERT INTO _filters VALUES ('notes', 'all', 'true');
INSERT INTO _rules VALUES ('notes', 'write', 'all', 'true');"""
KINDS = ("point select", "one-row insert", "first touch")


class Shard:
    """One shard's storage, with quotas off (0, 0) or set far above what the run makes."""

    def __init__(self, data: Path, databases: int, bytes_: int):
        quotas = Quotas(databases, bytes_, "shard-0", MembershipSource(Membership(0, {"shard-0": ""})))
        self.databases = Databases(Storage(data, Limits(durability="normal"), catalog=True, quotas=quotas))

    async def call(self, tenant: str, sql: str, params: list[pb.Value] | None = None) -> None:
        context = shard_pb2.Context(database_id=database_id("bench", "app", tenant), account="bench", name="app",
                                    tenant=tenant, schema=SCHEMA)
        statements = [pb.Statement(sql=sql, params=params or [])]
        await self.databases.run(
            context.database_id, lambda database: engine.run(database, context, statements, None), SCHEMA,
            inline=lambda database: engine.run_inline(database, context, statements, None),
            account="bench", identity=Identity("bench", "app", tenant))

    async def timed(self, kind: str, calls: int, round_number: int) -> float:
        """Process CPU microseconds per call of `kind`, one call at a time."""
        await self.call("warm", "INSERT OR IGNORE INTO notes VALUES (42, 'x')")
        started = time.process_time()
        for number in range(calls):
            if kind == "point select":
                await self.call("warm", "SELECT body FROM notes WHERE id = 42")
            elif kind == "one-row insert":
                await self.call("warm", "INSERT INTO notes (body) VALUES ('a note')")
            else:
                await self.call(f"new-{round_number}-{number}", "SELECT 1")
        return (time.process_time() - started) / calls * 1e6


async def measure(calls: int, rounds: int) -> dict[tuple[str, str], list[float]]:
    found: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as off_data, tempfile.TemporaryDirectory() as on_data:
        shards = {"off": Shard(Path(off_data), 0, 0), "on": Shard(Path(on_data), 10 ** 9, 2 ** 50)}
        for number in range(rounds):
            for kind in KINDS:
                for setting in (("off", "on") if number % 2 == 0 else ("on", "off")):
                    found.setdefault((kind, setting), []).append(
                        await shards[setting].timed(kind, calls if kind != "first touch" else calls // 10, number))
        for shard in shards.values():
            await shard.databases.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=5000, help="calls per kind, setting and round (first touch: a tenth)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    found = asyncio.run(measure(args.calls, args.rounds))
    print(f"per-account quotas off / on, one shard in process, {args.rounds} rounds; best round, CPU µs per call")
    for kind in KINDS:
        off, on = min(found[kind, "off"]), min(found[kind, "on"])
        print(f"  {kind:15}: off {off:7.1f}  on {on:7.1f}  on / off {on / off:.3f}")


if __name__ == "__main__":
    main()
