"""Membership changes on a running cluster of real processes (docs/rebalancing.md, phase one):
routing follows the new epoch without restarts; no data moves yet, so these assert routing only."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.client import Client
from loot.ids import database_id
from loot.internal.v1 import shard_pb2, shard_pb2_grpc
from loot.cli.local_cluster import LocalCluster
from loot.membership import EPOCH_HEADER
from loot.ring import Ring
from loot.secret import SECRET_HEADER
from loot.tokens import Key, mint
from loot.v1 import database_pb2 as pb
from tests.conftest import refused, start_cluster

pytestmark = pytest.mark.cluster  # clusters started by its own fixtures

TENANTS = [f"t{i}" for i in range(60)]
TWO, THREE = ["shard-0", "shard-1"], ["shard-0", "shard-1", "shard-2"]


def _cluster(data: Path, poll: str) -> Iterator[LocalCluster]:
    cluster = start_cluster(data, env={"LOOT_MEMBERSHIP_POLL": poll}, membership_file=True)
    yield cluster
    cluster.stop()


@pytest.fixture
def polling(tmp_path: Path) -> Iterator[LocalCluster]:
    yield from _cluster(tmp_path / "cluster", "0.2")


@pytest.fixture
def signalled(tmp_path: Path) -> Iterator[LocalCluster]:
    """Polls too rarely to matter within a test: only SIGHUP or a shard's refusal reloads."""
    yield from _cluster(tmp_path / "cluster", "3600")


def _moved(key: Key) -> list[str]:
    """Tenants whose database goes to shard-2 when it joins."""
    old, new = Ring(TWO), Ring(THREE)
    moved = [t for t in TENANTS if new.owner(database_id(key.account, "app", t)) == "shard-2"]
    assert moved and all(old.owner(database_id(key.account, "app", t)) != "shard-2" for t in moved)
    return moved


def _file(cluster: LocalCluster, shard: str, key: Key, tenant: str) -> Path:
    db = database_id(key.account, "app", tenant)
    return cluster.data / shard / db[:2] / db[2:4] / f"{db}.sqlite"


def _wait_for(condition, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _shard_call(cluster: LocalCluster, shard: str, key: Key, tenant: str, epoch: int | None = None) -> None:
    context = shard_pb2.Context(database_id=database_id(key.account, "app", tenant), account=key.account,
                                name="app", tenant=tenant)
    request = shard_pb2.ShardExecuteRequest(context=context, request=pb.ExecuteRequest(statement=pb.Statement(sql="SELECT 1")))
    metadata = [(SECRET_HEADER, cluster.env["LOOT_CLUSTER_SECRET"])]
    if epoch is not None:
        metadata.append((EPOCH_HEADER, str(epoch)))
    with grpc.insecure_channel(cluster.shards[shard].address) as channel:
        shard_pb2_grpc.ShardStub(channel).Execute(request, metadata=metadata, timeout=10)


def test_a_new_epoch_is_followed_without_restarts(polling: LocalCluster, key: Key) -> None:
    cluster, moved = polling, _moved(key)
    pids = {child.name: child.process.pid for child in cluster.children()}
    with Client(cluster.address) as client:
        for tenant in TENANTS:
            client.execute(mint(key, "app", tenant), "SELECT 1")
        cluster.add_shard("shard-2")
        cluster.publish_membership(THREE)
        _wait_for(lambda: any("membership epoch 1" in line for line in cluster.sink.lines if line.startswith("router:")),
                  "the router to reload the file")
        for tenant in TENANTS:
            client.execute(mint(key, "app", tenant), "SELECT 1")
    ring = Ring(THREE)
    for tenant in TENANTS:
        owner = ring.owner(database_id(key.account, "app", tenant))
        assert _file(cluster, owner, key, tenant).exists(), tenant
    assert all(_file(cluster, "shard-2", key, tenant).exists() for tenant in moved)
    assert not any(_file(cluster, "shard-2", key, tenant).exists() for tenant in set(TENANTS) - set(moved))
    assert {child.name: child.process.pid for child in cluster.children() if child.name != "shard-2"} == pids


def test_a_shard_refuses_what_it_no_longer_owns_and_names_its_epoch(signalled: LocalCluster, key: Key) -> None:
    cluster, tenant = signalled, _moved(key)[0]
    old_owner = Ring(TWO).owner(database_id(key.account, "app", tenant))
    cluster.add_shard("shard-2")
    _shard_call(cluster, old_owner, key, tenant)  # epoch 0: still its own
    cluster.publish_membership(THREE)
    _shard_call(cluster, old_owner, key, tenant)  # not reloaded yet (no poll, no signal)
    info = refused(lambda: _shard_call(cluster, old_owner, key, tenant, epoch=1),  # a newer router: catch up
                   grpc.StatusCode.FAILED_PRECONDITION, "WRONG_SHARD")
    assert dict(info.metadata) == {"owner": "shard-2", "epoch": "1"}
    _shard_call(cluster, "shard-2", key, tenant, epoch=1)  # started at epoch 0, catches up the same way


def test_a_router_with_stale_membership_is_corrected_by_the_shard(signalled: LocalCluster, key: Key) -> None:
    cluster, tenant = signalled, _moved(key)[0]
    old_owner = Ring(TWO).owner(database_id(key.account, "app", tenant))
    cluster.add_shard("shard-2")
    cluster.publish_membership(THREE)
    cluster.shards[old_owner].signal(signal.SIGHUP)  # the shards reload; the router does not
    _wait_for(lambda: _refuses(cluster, old_owner, key, tenant), "the shard to reload on SIGHUP")
    with Client(cluster.address) as client:
        client.execute(mint(key, "app", tenant), "SELECT 1")  # refused by the old owner, retried at the new one
    assert _file(cluster, "shard-2", key, tenant).exists()
    assert any("membership epoch 1" in line for line in cluster.sink.lines if line.startswith("router:"))


def _refuses(cluster: LocalCluster, shard: str, key: Key, tenant: str) -> bool:
    try:
        _shard_call(cluster, shard, key, tenant)
    except grpc.RpcError as error:
        return error.code() == grpc.StatusCode.FAILED_PRECONDITION
    return False
