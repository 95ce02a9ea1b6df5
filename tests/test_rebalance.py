"""Online rebalancing with real processes (docs/rebalancing.md §5): databases move to their new
owner with every acknowledged write, each lives on exactly one shard, nothing is lost when a
shard dies mid-handoff, and only the cluster's shards may take a database."""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.client import Client, rows
from loot.ids import database_id
from loot.internal.v1 import shard_pb2, shard_pb2_grpc
from loot.cli.local_cluster import LocalCluster, shard_names
from loot.ring import Ring
from loot.secret import SECRET_HEADER
from loot import Client as SdkClient
from loot.errors import LootError
from loot.sdk.routes import Routes
from loot.tokens import Key, mint
from loot.v1 import database_pb2 as pb
from loot.v1 import database_pb2_grpc
from tests.certs import Authority
from tests.conftest import refused, start_cluster
from tests.test_operations import scrape
from tests.schemas import open_table

pytestmark = pytest.mark.cluster  # clusters started by its own fixtures and test bodies

SCHEMA = open_table("CREATE TABLE notes (n INTEGER)", "notes")
SLOW_COUNT = "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 3000000) SELECT count(*) FROM c"


class Writers:
    """Threads inserting into random databases until stopped; remembers every acknowledged value. `direct`
    more threads write with the SDK, which sends each call straight to its database's shard."""

    def __init__(self, address: str, key: Key, tenants: list[str], threads: int = 2, direct: int = 0):
        self.acknowledged: dict[str, set[int]] = {tenant: set() for tenant in tenants}
        self.failed = 0
        self.routes: list[Routes] = []  # each SDK client's view of the shards
        self._tokens = {tenant: mint(key, "app", tenant, schema=SCHEMA) for tenant in tenants}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._counter = iter(range(1, 10**9))
        self._threads = [threading.Thread(target=self._write, args=(address, seed)) for seed in range(threads)]
        self._threads += [threading.Thread(target=self._write_direct, args=(address, seed))
                          for seed in range(threads, threads + direct)]
        for thread in self._threads:
            thread.start()

    def _write(self, address: str, seed: int) -> None:
        with Client(address) as client:
            self._insert(seed, lambda tenant, value: client.execute(self._tokens[tenant],
                                                                    "INSERT INTO notes VALUES (?)", [value]))

    def _write_direct(self, address: str, seed: int) -> None:
        with SdkClient(address, direct=True) as client:
            databases = {tenant: client.open(token) for tenant, token in self._tokens.items()}
            self.routes.append(client.routes)
            self._insert(seed, lambda tenant, value: databases[tenant].execute("INSERT INTO notes VALUES (?)", [value]))

    def _insert(self, seed: int, insert) -> None:
        chooser = random.Random(seed)
        tenants = list(self._tokens)
        while not self._stop.is_set():
            tenant = chooser.choice(tenants)
            with self._lock:
                value = next(self._counter)
            try:
                insert(tenant, value)
            except (grpc.RpcError, LootError):
                with self._lock:
                    self.failed += 1
                continue
            with self._lock:
                self.acknowledged[tenant].add(value)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


@pytest.fixture
def two_shards(tmp_path: Path) -> Iterator[LocalCluster]:
    cluster = start_cluster(tmp_path / "cluster", env={"LOOT_MEMBERSHIP_POLL": "0.2"}, membership_file=True)
    yield cluster
    cluster.stop()


def _seed(cluster: LocalCluster, key: Key, tenants: list[str]) -> None:
    with Client(cluster.address) as client:
        for tenant in tenants:
            client.execute(mint(key, "app", tenant, schema=SCHEMA), "INSERT INTO notes VALUES (0)")


def _live_files(cluster: LocalCluster) -> dict[str, list[str]]:
    """database id -> the shards holding a live (served) file for it."""
    found: dict[str, list[str]] = {}
    for shard_dir in cluster.data.glob("shard-*"):
        for path in shard_dir.glob("??/??/*.sqlite"):
            found.setdefault(path.stem, []).append(shard_dir.name)
    return found


def _assert_one_file_each_at_its_owner(cluster: LocalCluster, key: Key, tenants: list[str], count: int) -> None:
    ring, live = Ring(shard_names(count)), _live_files(cluster)
    for tenant in tenants:
        db = database_id(key.account, "app", tenant)
        assert live.get(db) == [ring.owner(db)], (tenant, live.get(db))


def _assert_acknowledged_readable(cluster: LocalCluster, key: Key, writers: Writers) -> None:
    """Every acknowledged value is there, and no value twice (each was sent by one call)."""
    with Client(cluster.address) as client:
        for tenant, values in writers.acknowledged.items():
            stored = [row[0] for row in rows(client.execute(mint(key, "app", tenant), "SELECT n FROM notes").result)]
            assert 0 in stored and values <= set(stored), (tenant, sorted(values - set(stored))[:5])
            assert len(stored) == len(set(stored)), (tenant, "applied twice")


def _moved(key: Key, tenants: list[str], before: int, after: int) -> int:
    old, new = Ring(shard_names(before)), Ring(shard_names(after))
    ids = [database_id(key.account, "app", tenant) for tenant in tenants]
    return sum(old.owner(db) != new.owner(db) for db in ids)


def _pulled(cluster: LocalCluster, names: list[str]) -> int:
    return sum(cluster.handoff_status(name).pulled for name in names)


def test_scaling_up_and_down_under_writes_loses_nothing(two_shards: LocalCluster, key: Key) -> None:
    """Through the router and with SDK clients routing directly to the shards' public ports."""
    cluster, tenants = two_shards, [f"t{i}" for i in range(300)]
    _seed(cluster, key, tenants)
    writers = Writers(cluster.address, key, tenants, direct=2)
    try:
        time.sleep(1)
        cluster.scale(3)
        pulled_up = _pulled(cluster, shard_names(3))
        time.sleep(1)
        before_down = _pulled(cluster, shard_names(2))
        cluster.scale(2)
        pulled_down = _pulled(cluster, shard_names(2)) - before_down
        time.sleep(1)
        _wait_for(lambda: [r.epoch for r in writers.routes] == [cluster.epoch] * 2, "the SDK to follow: 2, 3, 2 shards")
        assert all(len(r.channels) == 3 for r in writers.routes)  # it wrote straight to each shard, shard-2 too
    finally:
        writers.stop()
    assert sum(len(values) for values in writers.acknowledged.values()) > 100
    assert pulled_up == _moved(key, tenants, 2, 3) > 0
    assert pulled_down == _moved(key, tenants, 3, 2) == pulled_up
    _assert_one_file_each_at_its_owner(cluster, key, tenants, 2)
    _assert_acknowledged_readable(cluster, key, writers)
    assert not list((cluster.data / "shard-2").glob("??/??/*.sqlite"))  # drained: everything handed off


def test_shards_killed_mid_handoff_lose_nothing(tmp_path: Path, key: Key) -> None:
    """The old owner dies as the new epoch is published, so the new owner is left mid-handoff
    (retrying it) when it dies too; both come back and the handoff completes."""
    cluster = start_cluster(tmp_path / "cluster", env={"LOOT_MEMBERSHIP_POLL": "0.2"}, membership_file=True)
    tenants = [f"t{i}" for i in range(150)]
    try:
        _seed(cluster, key, tenants)
        writers = Writers(cluster.address, key, tenants, threads=1)
        cluster.add_shard("shard-2")
        cluster.publish_membership(shard_names(3))
        _kill(cluster, "shard-0")
        _wait_for(lambda: _status(cluster, "shard-2").failed > 0, "shard-2 to retry the dead shard-0")
        assert not _status(cluster, "shard-2").settled
        _kill(cluster, "shard-2")
        cluster.restart_shard("shard-2")
        cluster.restart_shard("shard-0")
        _wait_for(lambda: all(_status(cluster, name).settled and _status(cluster, name).epoch == 1
                              for name in shard_names(3)), "every shard to settle epoch 1", timeout=120)
        time.sleep(0.5)
        writers.stop()
        _assert_one_file_each_at_its_owner(cluster, key, tenants, 3)
        _assert_acknowledged_readable(cluster, key, writers)
    finally:
        cluster.stop()


def test_lazy_pull_serves_a_moved_database_on_first_touch(tmp_path: Path, key: Key) -> None:
    """With the background walk off, the first request for a moved database pulls it, never
    creating an empty one; untouched moved databases stay where they were; a database nobody
    listed is new and created at once."""
    cluster = start_cluster(tmp_path / "cluster", env={"LOOT_MEMBERSHIP_POLL": "0.2", "LOOT_HANDOFF_CONCURRENCY": "0",
                                                       "LOOT_METRICS_PORT": "0"}, membership_file=True)
    tenants = [f"t{i}" for i in range(40)]
    try:
        _seed(cluster, key, tenants)
        cluster.add_shard("shard-2")
        cluster.publish_membership(shard_names(3))
        moved = [t for t in tenants if Ring(shard_names(3)).owner(database_id(key.account, "app", t)) == "shard-2"]
        _wait_for(lambda: _status(cluster, "shard-2").to_pull == len(moved) and _status(cluster, "shard-2").epoch == 1,
                  "shard-2 to discover what moves to it")
        with Client(cluster.address) as client:
            result = client.execute(mint(key, "app", moved[0]), "SELECT n FROM notes")
        assert rows(result.result) == [(0,)]
        _wait_for(lambda: _status(cluster, "shard-2").to_pull == len(moved) - 1, "the old owner's confirmation")
        status = _status(cluster, "shard-2")
        assert (status.pulled, status.settled) == (1, False)
        metrics = scrape(cluster, "shard-2")
        assert (metrics[("loot_handoff_pulled_total", ())], metrics[("loot_handoff_to_pull", ())],
                metrics[("loot_handoff_settled", ())]) == (1, len(moved) - 1, 0)
        new = next(t for t in (f"new{i}" for i in range(100))
                   if Ring(shard_names(3)).owner(database_id(key.account, "app", t)) == "shard-2")
        with Client(cluster.address) as client:  # unsettled, but nobody listed it: created at once
            assert rows(client.execute(mint(key, "app", new, schema=SCHEMA), "SELECT count(*) FROM notes").result) == [(0,)]
        live = _live_files(cluster)
        assert live[database_id(key.account, "app", moved[0])] == ["shard-2"]
        assert live[database_id(key.account, "app", new)] == ["shard-2"]
        assert all(live[database_id(key.account, "app", t)] != ["shard-2"] for t in moved[1:])
    finally:
        cluster.stop()


def test_only_the_cluster_and_the_new_owner_get_a_copy(two_shards: LocalCluster, key: Key) -> None:
    cluster, tenant = two_shards, "victim"
    _seed(cluster, key, [tenant])
    db = database_id(key.account, "app", tenant)
    holder = Ring(shard_names(2)).owner(db)
    other = next(name for name in shard_names(2) if name != holder)
    request = shard_pb2.HandoffRequest(database_id=db, owner=other, epoch=0)
    secret = [(SECRET_HEADER, cluster.env["LOOT_CLUSTER_SECRET"])]
    with grpc.insecure_channel(cluster.shards[holder].address) as channel:
        stub = shard_pb2_grpc.HandoffStub(channel)
        refused(lambda: list(stub.Copy(request, timeout=5)), grpc.StatusCode.UNAUTHENTICATED, "CLUSTER_SECRET")
        refused(lambda: stub.Owned(shard_pb2.OwnedRequest(owner=other, epoch=0), timeout=5),
                grpc.StatusCode.UNAUTHENTICATED, "CLUSTER_SECRET")
        info = refused(lambda: list(stub.Copy(request, metadata=secret, timeout=5)),
                       grpc.StatusCode.FAILED_PRECONDITION, "WRONG_SHARD")
        assert dict(info.metadata) == {"owner": holder, "epoch": "0"}
        refused(lambda: stub.Confirm(request, metadata=secret, timeout=5), grpc.StatusCode.FAILED_PRECONDITION,
                "WRONG_SHARD")
        ahead = shard_pb2.HandoffRequest(database_id=db, owner=other, epoch=7)
        refused(lambda: list(stub.Copy(ahead, metadata=secret, timeout=5)), grpc.StatusCode.UNAVAILABLE, "EPOCH_BEHIND")
        assert stub.Owned(shard_pb2.OwnedRequest(owner=other, epoch=0), metadata=secret, timeout=5).database_ids == []
    assert _live_files(cluster)[db] == [holder]  # still served where it was


def _status(cluster: LocalCluster, name: str) -> shard_pb2.HandoffStatus:
    return cluster.handoff_status(name) or shard_pb2.HandoffStatus(epoch=-1)


def _kill(cluster: LocalCluster, name: str) -> None:
    cluster.shards[name].signal(signal.SIGKILL)
    cluster.shards[name].wait(10)


def _wait_for(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_shards_hand_databases_over_mutual_tls(tmp_path: Path, key: Key) -> None:
    """With TLS on every port, a shard reaches the previous owner with its cluster certificate."""
    authority = Authority(tmp_path)
    server_cert, server_key = authority.issue("server")
    client_cert, client_key = authority.issue("cluster member")
    env = {"LOOT_MEMBERSHIP_POLL": "0.2", "LOOT_TLS_CERT": str(server_cert), "LOOT_TLS_KEY": str(server_key),
           "LOOT_TLS_CLIENT_CA": str(authority.ca_file), "LOOT_SHARD_TLS_CA": str(authority.ca_file),
           "LOOT_SHARD_TLS_CERT": str(client_cert), "LOOT_SHARD_TLS_KEY": str(client_key)}
    cluster = start_cluster(tmp_path / "cluster", env=env, membership_file=True)
    tenant = next(t for t in (f"t{i}" for i in range(100))
                  if Ring(shard_names(3)).owner(database_id(key.account, "app", t)) == "shard-2")
    token = mint(key, "app", tenant, schema=SCHEMA)
    credentials = grpc.ssl_channel_credentials(authority.ca_file.read_bytes(), client_key.read_bytes(),
                                               client_cert.read_bytes())
    try:
        with grpc.secure_channel(cluster.address, credentials) as channel:
            stub = database_pb2_grpc.DatabaseStub(channel)

            def execute(sql: str) -> pb.ExecuteResponse:
                return stub.Execute(pb.ExecuteRequest(statement=pb.Statement(sql=sql)),
                                    metadata=(("authorization", f"Bearer {token}"),), timeout=30)
            execute("INSERT INTO notes VALUES (42)")
            cluster.add_shard("shard-2")
            cluster.publish_membership(shard_names(3))
            cluster.router.signal(signal.SIGHUP)
            _wait_for(lambda: any("membership epoch 1" in line for line in cluster.sink.lines if line.startswith("router:")),
                      "the router to reload")
            assert rows(execute("SELECT n FROM notes").result) == [(42,)]
        assert _live_files(cluster)[database_id(key.account, "app", tenant)] == ["shard-2"]
    finally:
        cluster.stop()


def test_a_request_queued_behind_the_fence_is_retried_at_the_new_owner(tmp_path: Path, key: Key) -> None:
    """Routed under the old epoch, it waits at the old owner behind a long query; the old owner
    fences, so it is refused after the router has already reloaded: the router still retries it."""
    cluster = start_cluster(tmp_path / "cluster", env={"LOOT_MEMBERSHIP_POLL": "0.2", "LOOT_STATEMENT_SECONDS": "120"},
                            membership_file=True)  # the long query may take more than 5 s on a busy machine
    try:
        _queued_behind_the_fence(cluster, key)
    finally:
        cluster.stop()


def _queued_behind_the_fence(cluster: LocalCluster, key: Key) -> None:
    tenant = next(t for t in (f"t{i}" for i in range(100))
                  if Ring(shard_names(3)).owner(database_id(key.account, "app", t)) == "shard-2")
    token = mint(key, "app", tenant, schema=SCHEMA)
    _seed(cluster, key, [tenant])
    cluster.add_shard("shard-2")
    answers: dict[str, object] = {}

    def call(name: str, sql: str) -> None:
        with Client(cluster.address) as client:
            try:
                answers[name] = rows(client.execute(token, sql).result)
            except grpc.RpcError as error:
                answers[name] = error
    slow = threading.Thread(target=call, args=("slow", SLOW_COUNT))
    slow.start()
    time.sleep(0.3)
    queued = threading.Thread(target=call, args=("queued", "INSERT INTO notes VALUES (1) RETURNING n"))
    queued.start()
    time.sleep(0.3)
    cluster.publish_membership(shard_names(3))
    for child in cluster.children():
        child.signal(signal.SIGHUP)
    slow.join()
    queued.join()
    assert answers["slow"] == [(3_000_000,)]
    assert answers["queued"] == [(1,)], answers["queued"]
    _wait_for(lambda: _live_files(cluster).get(database_id(key.account, "app", tenant)) == ["shard-2"], "the handoff")
