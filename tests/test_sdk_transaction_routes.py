"""The SDK's transactions under direct routing (loot/sdk/transaction.py): a `begin` that the shard it chose
refused as not its own goes once more through the configured address, the topology refreshed; once `begin`
was answered, a failure is the transaction's answer, never sent elsewhere."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest

from loot import AsyncClient, Client
from loot.errors import Unavailable
from loot.ids import database_id
from loot.ring import Ring
from loot.status import rich_status
from loot.tokens import Key, mint
from loot.v1 import database_pb2 as pb
from tests.schemas import open_table
from tests.test_one_hop import access_lines

pytestmark = pytest.mark.cluster  # clusters from the fixtures
SCHEMA = open_table("CREATE TABLE notes (n INTEGER)", "notes")


class StaleShard:
    """A shard's public port whose membership moved the database away: every transaction is refused
    WRONG_SHARD, as a shard refuses one (a real gRPC server on loopback)."""

    def __init__(self) -> None:
        self.transactions = 0
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        handler = grpc.stream_stream_rpc_method_handler(self._transaction)
        self.server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("loot.v1.Database",
                                                                                  {"Transaction": handler})])
        self.address = f"127.0.0.1:{self.server.add_insecure_port('127.0.0.1:0')}"
        self.server.start()

    def _transaction(self, requests, context: grpc.ServicerContext):
        next(requests)  # the begin
        self.transactions += 1
        context.abort_with_status(rich_status(grpc.StatusCode.FAILED_PRECONDITION, "WRONG_SHARD",
                                              "database belongs to shard-9 under membership epoch 7"))


@pytest.fixture
def stale() -> Iterator[StaleShard]:
    shard = StaleShard()
    yield shard
    shard.server.stop(None)


def _stale_topology(epoch: int, address: str) -> pb.TopologyResponse:
    """Every shard at the stale one's address: the client's view after the database moved."""
    return pb.TopologyResponse(epoch=epoch, ring_hash="md5", points=160,
                               shards=[pb.TopologyShard(name=f"shard-{i}", address=address) for i in range(2)])


def _wait(condition) -> None:
    deadline = time.monotonic() + 120
    while not condition():
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.05)


def test_a_begin_refused_wrong_shard_goes_through_the_address(cluster, key: Key, stale: StaleShard) -> None:
    token = mint(key, "app", "fallback-sync", schema=SCHEMA)
    with Client(cluster.address) as client:
        db = client.open(token)
        db.execute("INSERT INTO notes VALUES (0)")  # learns the topology
        client.routes.learn(_stale_topology(client.routes.epoch, stale.address))
        _wait(lambda: client.routes.stub(token))  # connected: the begin goes there first
        with db.transaction() as tx:
            tx.execute("INSERT INTO notes VALUES (1)")
        assert stale.transactions == 1
        assert client.routes.due(), "the topology is asked for again at the next call"
        assert db.execute("SELECT n FROM notes ORDER BY n").rows == [(0,), (1,)]
        assert not client.routes.due()


def test_an_async_begin_refused_wrong_shard_goes_through_the_address(cluster, key: Key, stale: StaleShard) -> None:
    token = mint(key, "app", "fallback-async", schema=SCHEMA)

    async def run() -> list[tuple]:
        async with AsyncClient(cluster.address) as client:
            db = client.open(token)
            await db.execute("INSERT INTO notes VALUES (0)")
            client.routes.learn(_stale_topology(client.routes.epoch, stale.address))
            while client.routes.stub(token) is None:
                await asyncio.sleep(0.05)
            async with db.transaction() as tx:
                await tx.execute("INSERT INTO notes VALUES (1)")
            assert client.routes.due()
            return (await db.execute("SELECT n FROM notes ORDER BY n")).rows

    assert asyncio.run(asyncio.wait_for(run(), 120)) == [(0,), (1,)]
    assert stale.transactions == 1


def test_a_shard_that_dies_after_begin_fails_the_transaction_without_a_retry(own_cluster, key: Key) -> None:
    tenant = next(t for t in (f"t{i}" for i in range(100))
                  if Ring(own_cluster.names).owner(database_id(key.account, "app", t)) == "shard-0")
    token = mint(key, "app", tenant, schema=SCHEMA)
    with Client(own_cluster.address, timeout=120) as client:
        db = client.open(token)
        db.execute("INSERT INTO notes VALUES (0)")
        _wait(lambda: client.routes.stub(token))  # straight to shard-0
        elsewhere = [access_lines(own_cluster, name, "Database/Transaction") for name in ("router", "shard-1")]
        with pytest.raises(Unavailable) as lost, db.transaction() as tx:
            tx.execute("INSERT INTO notes VALUES (1)")
            own_cluster.shards["shard-0"].signal(signal.SIGKILL)
            own_cluster.shards["shard-0"].wait(60)
            tx.execute("INSERT INTO notes VALUES (2)")
        assert lost.value.reason == ""  # the stream broke: no shard's word (docs/transactions.md)
        assert [access_lines(own_cluster, name, "Database/Transaction") for name in ("router", "shard-1")] == elsewhere
