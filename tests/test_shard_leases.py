"""Leases on a database's actor (loot/shard/databases.py), on real SQLite files: what an interactive
transaction relies on (docs/transactions.md)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from loot.ids import database_id
from loot.shard.databases import Databases
from loot.shard.limits import Limits
from loot.shard.storage import Storage

LEASED, OTHER = database_id("account", "app", "leased"), database_id("account", "app", "other")


def _note(value: int):
    def work(database) -> int:
        database.conn.execute("CREATE TABLE IF NOT EXISTS t (x)")
        database.conn.execute("INSERT INTO t VALUES (?)", (value,))
        return value
    return work


def test_a_lease_holds_its_database_and_a_fence_revokes_it(tmp_path: Path) -> None:
    async def scenario() -> None:
        databases = Databases(Storage(tmp_path), Limits(open_databases=1))
        lease = await databases.lease(LEASED, "account", None)
        assert await lease.run(_note(1)) == 1
        opened = await lease.run(lambda database: database)
        behind = asyncio.create_task(databases.run(LEASED, _note(2)))
        assert await databases.run(OTHER, _note(3)) == 3, "another database never waits for the lease"
        assert databases.stats()["open"] == 1
        assert await lease.run(lambda database: database) is opened, "the cache of one closed the other one"
        assert not behind.done()
        fencing = asyncio.create_task(databases.fence(lambda key: key == LEASED))
        await asyncio.wait_for(lease.revoked.wait(), 60)  # the fence asks the transaction to end
        assert not fencing.done(), "the fence waits for the lease to end"
        await lease.end(None)
        assert await behind == 2, "the request behind ran once the lease ended"
        assert await fencing == 1
        await databases.close()

    asyncio.run(scenario())
