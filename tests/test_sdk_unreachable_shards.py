"""Direct routing when the client cannot reach a shard (docs/clients.md, "Routing directly"): calls and
transactions go through the configured address (here a router) when the shards' public addresses are out of
the client's reach, or the connection to one breaks as a transaction begins; when the owner itself is down,
a transaction is answered UNAVAILABLE with the router's reason, and nothing of it is applied."""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from loot import Client
from loot.cli.local_cluster import LocalCluster
from loot.errors import Unavailable
from loot.ids import database_id
from loot.membership import Membership, write_membership
from loot.ring import Ring
from loot.tokens import Key, mint
from tests.conftest import start_cluster
from tests.cutting_proxy import CuttingProxy
from tests.test_one_hop import topology
from tests.test_sdk_transaction_moved import SCHEMA, Asyncio, Sync, _wait

pytestmark = pytest.mark.cluster  # clusters started by the tests
TIMEOUT = 120.0  # per call: an answer that waited it out would be DEADLINE_EXCEEDED


@pytest.fixture
def listed(tmp_path: Path) -> Iterator[LocalCluster]:
    """Two shards whose public addresses the tests choose (a membership file)."""
    cluster = start_cluster(tmp_path / "cluster", membership_file=True)
    yield cluster
    cluster.stop()


def _tenant_of(key: Key, shard: str) -> str:
    return next(t for t in (f"t{i}" for i in range(200))
                if Ring(["shard-0", "shard-1"]).owner(database_id(key.account, "app", t)) == shard)


def _advertise(cluster: LocalCluster, public: dict[str, str], token: str) -> None:
    """The next epoch: the same shards, at these public addresses; the router answers with them."""
    cluster.epoch += 1
    write_membership(cluster.membership, Membership(cluster.epoch, {name: shard.address for name, shard in
                                                                    cluster.shards.items()}, public))
    for child in cluster.children():
        child.signal(signal.SIGHUP)
    _wait(Sync(), lambda: topology(cluster.address, token).epoch == cluster.epoch, "the router's reload")


def test_public_addresses_out_of_the_clients_reach_leave_every_call_to_the_router(listed: LocalCluster,
                                                                                   key: Key) -> None:
    """As where shards' public ports are firewalled or their names resolve only inside the cluster."""
    refusing = socket.socket()  # bound, never listening: connections are refused
    silent = socket.create_server(("127.0.0.1", 0))  # listening, never accepting: connections never get ready
    with refusing, silent:
        refusing.bind(("127.0.0.1", 0))
        tokens = {name: mint(key, "app", _tenant_of(key, name), schema=SCHEMA) for name in ("shard-0", "shard-1")}
        _advertise(listed, {"shard-0": "%s:%d" % refusing.getsockname(), "shard-1": "%s:%d" % silent.getsockname()},
                   tokens["shard-0"])
        with Client(listed.address, timeout=TIMEOUT) as client:
            for token in tokens.values():
                db = client.open(token)
                db.execute("INSERT INTO notes VALUES (0)")
                for n in (1, 2):
                    with db.transaction() as tx:
                        tx.execute("INSERT INTO notes VALUES (?)", [n])
                assert db.execute("SELECT n FROM notes ORDER BY n").rows == [(0,), (1,), (2,)]
            assert client.routes.epoch == listed.epoch and len(client.routes.channels) == 2  # it did try them


@pytest.mark.parametrize("sdk_type", [Sync, Asyncio], ids=["sync", "asyncio"])
def test_a_connection_that_breaks_as_begin_is_sent_falls_back_to_the_router(listed: LocalCluster, key: Key,
                                                                           sdk_type: type) -> None:
    """The SDK holds the connection as ready, sends `begin` on it, and the connection is reset: the shard never
    saw it (and a begin alone commits nothing), so it goes through the router, and commits once."""
    token = mint(key, "app", _tenant_of(key, "shard-0"), schema=SCHEMA)
    proxy = CuttingProxy(listed.shards["shard-0"].public)
    _advertise(listed, {"shard-0": proxy.address, "shard-1": listed.shards["shard-1"].public}, token)
    sdk = sdk_type()
    client = sdk.client(listed.address)
    try:
        db = client.open(token)
        sdk.run(db.execute("INSERT INTO notes VALUES (0)"))
        _wait(sdk, lambda: client.routes.stub(token), "the SDK's connection through the proxy")
        sdk.insert(db, 1)
        assert proxy.calls == 1, "the transaction went through the proxy"
        proxy.arm()
        sdk.insert(db, 2)
        assert proxy.cut.is_set() and proxy.calls == 1
        assert sdk.run(db.execute("SELECT n FROM notes ORDER BY n")).rows == [(0,), (1,), (2,)]
    finally:
        sdk.close(client)
        proxy.close()


def test_a_transaction_for_a_dead_owner_is_unavailable_and_applies_nothing(own_cluster: LocalCluster,
                                                                          key: Key) -> None:
    token = mint(key, "app", _tenant_of(key, "shard-0"), schema=SCHEMA)
    with Client(own_cluster.address, timeout=TIMEOUT) as client:
        db = client.open(token)
        db.execute("INSERT INTO notes VALUES (0)")
        _wait(Sync(), lambda: client.routes.stub(token), "the SDK's connection to shard-0")
        own_cluster.shards["shard-0"].signal(signal.SIGKILL)
        own_cluster.shards["shard-0"].wait(60)
        with pytest.raises(Unavailable) as lost, db.transaction() as tx:
            tx.execute("INSERT INTO notes VALUES (1)")
        assert lost.value.reason == "SHARD_UNAVAILABLE", lost.value  # the router's word: it could not reach it
        own_cluster.restart_shard("shard-0")
        with db.transaction() as tx:
            tx.execute("INSERT INTO notes VALUES (2)")
        assert db.execute("SELECT n FROM notes ORDER BY n").rows == [(0,), (2,)]
