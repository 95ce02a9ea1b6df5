"""A transaction that the SDK sends straight to a shard that no longer owns its database (the membership
changed since the SDK asked for the topology) is forwarded by that shard and applied once, at the new owner;
the shard says which epoch it routes by (`loot-epoch` with its first answer, loot/node/one_hop.py), so the
SDK asks for the topology again and its next transactions skip the former owner (loot/sdk/transaction.py).

What shows where a transaction went, from outside the SDK: a frozen process (SIGSTOP) answers nothing, so a
transaction that commits while the former owner is frozen did not go there, and one that commits while the
router is frozen too went straight to the new owner."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from loot import AsyncClient, Client
from loot.cli.local_cluster import Child, LocalCluster, shard_names
from loot.ids import database_id
from loot.ring import Ring
from loot.sdk import routes
from loot.tokens import Key, mint
from tests.conftest import start_cluster
from tests.schemas import open_table
from tests.test_one_hop import topology

pytestmark = pytest.mark.cluster  # a cluster started by the test
SCHEMA = open_table("CREATE TABLE notes (n INTEGER)", "notes")
TIMEOUT = 120.0  # per call, generous under load: a transaction sent to a frozen process would wait it out


class Sync:
    """The synchronous SDK, driven step by step."""

    def client(self, address: str) -> Client:
        return Client(address, timeout=TIMEOUT)

    def run(self, value):
        return value

    def insert(self, db, n: int) -> None:
        with db.transaction() as tx:
            tx.execute("INSERT INTO notes VALUES (?)", [n])

    def pause(self) -> None:
        time.sleep(0.05)

    def close(self, client: Client) -> None:
        client.close()


class Asyncio:
    """The asyncio SDK, driven step by step on one event loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def client(self, address: str) -> AsyncClient:
        return self.run(self._client(address))

    async def _client(self, address: str) -> AsyncClient:
        return AsyncClient(address, timeout=TIMEOUT)

    def run(self, value):
        return self.loop.run_until_complete(value)

    def insert(self, db, n: int) -> None:
        self.run(self._insert(db, n))

    async def _insert(self, db, n: int) -> None:
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO notes VALUES (?)", [n])

    def pause(self) -> None:
        self.run(asyncio.sleep(0.05))

    def close(self, client: AsyncClient) -> None:
        self.run(client.close())
        self.loop.close()


def _wait(sdk: Sync | Asyncio, condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + 120
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen"
        sdk.pause()


def _freeze(child: Child, frozen: list[Child]) -> None:
    child.signal(signal.SIGSTOP)
    frozen.append(child)


@pytest.mark.parametrize("sdk_type", [Sync, Asyncio], ids=["sync", "asyncio"])
def test_a_transaction_at_the_former_owner_commits_once_and_the_next_skips_it(
        tmp_path: Path, key: Key, sdk_type: type, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routes, "REFRESH_EVERY", 3600.0)  # only a shard's word makes the SDK ask again
    tenant = next(t for t in (f"t{i}" for i in range(200))
                  if Ring(shard_names(2)).owner(database_id(key.account, "app", t)) == "shard-0"
                  and Ring(shard_names(3)).owner(database_id(key.account, "app", t)) == "shard-2")
    token = mint(key, "app", tenant, schema=SCHEMA)
    cluster = start_cluster(tmp_path / "cluster", membership_file=True)
    frozen: list[Child] = []
    sdk = sdk_type()
    client = sdk.client(cluster.address)
    try:
        db = client.open(token)
        sdk.run(db.execute("INSERT INTO notes VALUES (0)"))  # learns the topology: two shards
        _wait(sdk, lambda: client.routes.stub(token), "the SDK's connection to shard-0")
        _moved(cluster, token)
        sdk.insert(db, 1)  # straight to shard-0, which forwards it to shard-2
        assert set(client.routes.channels) == {cluster.shards["shard-0"].public}, "only shard-0 was called"
        _freeze(cluster.shards["shard-0"], frozen)
        sdk.insert(db, 2)  # not at shard-0: the SDK asked for the topology again (router, or shard-2 if connected)
        _wait(sdk, lambda: client.routes.stub(token), "the SDK's connection to shard-2")
        _freeze(cluster.router, frozen)
        sdk.insert(db, 3)  # straight to shard-2
        assert sdk.run(db.execute("SELECT n FROM notes ORDER BY n")).rows == [(0,), (1,), (2,), (3,)]
    finally:
        for child in frozen:
            child.signal(signal.SIGCONT)
        sdk.close(client)
        cluster.stop()


def _moved(cluster: LocalCluster, token: str) -> None:
    """Scale to three shards (the database moves to shard-2), the router routing by the new epoch."""
    epoch = cluster.scale(3).epoch
    _wait(Sync(), lambda: topology(cluster.address, token).epoch == epoch, "the router's reload")
