"""Per-account quotas through real processes (docs/operations.md#quotas): a burst of new databases
through several routers at once stops at each shard's share, with the reason, and destroying frees
room; an account over its bytes share has its growing writes refused while reads go on."""

from __future__ import annotations

import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from loot import Client as SdkClient
from loot.cli.local_cluster import Child, LocalCluster
from loot.ids import database_id
from loot.ring import Ring
from loot.shard.quotas import database_share
from loot.errors import Aborted
from loot.status import error_info
from loot.tokens import Key, mint
from tests.client import Client, rows
from tests.conftest import refused, start_cluster
from tests.schemas import open_table

pytestmark = pytest.mark.cluster
QUOTA = 40
PER_SHARD = 60  # creations tried on each shard: more than its share of QUOTA
SCHEMA = open_table("CREATE TABLE t (x BLOB)", "t")


@pytest.fixture
def routers(tmp_path: Path) -> Iterator[tuple[LocalCluster, list[str]]]:
    """Two shards with a database quota of QUOTA per account, and three routers in front of them."""
    cluster = start_cluster(tmp_path / "cluster", env={"LOOT_ACCOUNT_DATABASES": str(QUOTA), "LOOT_METRICS_PORT": "0",
                                                       "LOOT_DURABILITY": "normal"})
    extra = []
    try:
        for number in (1, 2):
            argv = list(cluster.router.argv)
            argv[argv.index("--port") + 1] = "0"
            extra.append(Child(f"router-{number}", argv, cluster.env, cluster.sink))
            extra[-1].start()
        yield cluster, [cluster.address, *(router.wait_ready() for router in extra)]
    finally:
        for router in extra:
            router.signal(15)
            router.wait(30)
        cluster.stop()


def tenants_by_shard(key: Key, names: tuple[str, ...], count: int, prefix: str) -> dict[str, list[str]]:
    """`count` tenant names of database `app` landing on each shard."""
    ring, found = Ring(names), {name: [] for name in names}
    number = 0
    while any(len(tenants) < count for tenants in found.values()):
        tenant = f"{prefix}{number}"
        owner = ring.owner(database_id(key.account, "app", tenant))
        if len(found[owner]) < count:
            found[owner].append(tenant)
        number += 1
    return found


def create(address: str, key: Key, tenant: str) -> str:
    """Touch (and so create) the database; "" when made, else the refusal's reason and metadata."""
    with Client(address) as client:
        try:
            client.execute(mint(key, "app", tenant, schema=SCHEMA), "SELECT 1", timeout=120)
            return ""
        except grpc.RpcError as error:
            info = error_info(error)
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error.details()
            return f"{info.reason} " + " ".join(f"{k}={v}" for k, v in sorted(info.metadata.items()))


def metric(child: Child, sample: str) -> float:
    with urllib.request.urlopen(f"http://{child.metrics}/metrics", timeout=30) as response:
        text = response.read().decode()
    return float(next((line.rsplit(" ", 1)[1] for line in text.splitlines() if line.startswith(sample + " ")), 0))


def test_a_burst_through_many_routers_stops_at_each_shards_share_and_destroy_frees_room(
        routers: tuple[LocalCluster, list[str]]) -> None:
    cluster, addresses = routers
    key, names = Key.generate(), tuple(cluster.names)
    ring = Ring(names)
    shares = {name: database_share(QUOTA, ring.fraction(name)) for name in names}
    bound = sum(shares.values())  # the documented overshoot bound: the shares' sum
    assert QUOTA < bound < PER_SHARD * len(names)
    planned = tenants_by_shard(key, names, PER_SHARD, "t")
    calls = [(addresses[number % len(addresses)], tenant)
             for number, tenant in enumerate(tenant for tenants in zip(*planned.values()) for tenant in tenants)]
    with ThreadPoolExecutor(24) as pool:  # all at once, spread over the routers
        outcomes = dict(zip((tenant for _, tenant in calls),
                            pool.map(lambda call: create(call[0], key, call[1]), calls)))

    for name, tenants in planned.items():
        made = [tenant for tenant in tenants if outcomes[tenant] == ""]
        assert len(made) == shares[name], f"{name} made exactly its share"
        expected = f"ACCOUNT_DATABASE_QUOTA count={shares[name]} limit={QUOTA} shard={name} shard_limit={shares[name]}"
        assert Counter(outcomes[tenant] for tenant in tenants if outcomes[tenant]) == {
            expected: PER_SHARD - shares[name]}
        assert metric(cluster.shards[name], f'loot_account_databases{{account="{key.account}"}}') == shares[name]
        assert metric(cluster.shards[name], 'loot_quota_refused_total{reason="ACCOUNT_DATABASE_QUOTA"}') == (
            PER_SHARD - shares[name])
    with SdkClient(cluster.address) as sdk:
        assert len(list(sdk.account(key).databases())) == bound

        doomed = [tenants[0] for tenants in planned.values()] + [tenants[1] for tenants in planned.values()]
        answer = sdk.account(key).destroy("app", doomed, f"destroy {len(doomed)} databases of app")
        assert sorted(answer.destroyed) == sorted(doomed)
    fresh = tenants_by_shard(key, names, 3, "again")
    for name, tenants in fresh.items():
        outcomes = [create(addresses[number], key, tenant) for number, tenant in enumerate(tenants)]
        assert outcomes[:2] == ["", ""], "two destroyed, two made again"
        assert outcomes[2].startswith("ACCOUNT_DATABASE_QUOTA"), outcomes[2]
    with Client(addresses[1]) as client:  # existing databases go on serving at the quota
        token = mint(key, "app", planned[names[0]][5], schema=SCHEMA)
        client.execute(token, "INSERT INTO t VALUES (x'01')")
        assert rows(client.execute(token, "SELECT count(*) FROM t").result) == [(1,)]


def test_writes_past_the_bytes_quota_are_refused_and_reads_go_on(tmp_path: Path) -> None:
    quota = 1024 * 1024
    cluster = start_cluster(tmp_path / "cluster", env={"LOOT_ACCOUNT_BYTES": str(quota), "LOOT_METRICS_PORT": "0"})
    try:
        key = Key.generate()
        token = mint(key, "app", "big", schema=SCHEMA)
        owner = cluster.shards[Ring(cluster.names).owner(database_id(key.account, "app", "big"))]
        with Client(cluster.address) as client:
            written = 0
            while written < 50:  # 50 × 100 KB: far past the quota
                try:
                    client.execute(token, "INSERT INTO t VALUES (zeroblob(100000))")
                except grpc.RpcError:
                    break
                written += 1
            info = refused(lambda: client.execute(token, "INSERT INTO t VALUES (zeroblob(100000))"),
                           grpc.StatusCode.RESOURCE_EXHAUSTED, "ACCOUNT_BYTES_QUOTA")
            assert info.metadata["limit"] == str(quota) and int(info.metadata["bytes"]) <= quota
            assert 5 <= written < 11, "about a megabyte, never more"
            assert rows(client.execute(token, "SELECT count(*) FROM t").result) == [(written,)]
            client.execute(token, "UPDATE t SET x = zeroblob(100) WHERE rowid = 1")  # needs no new page
            assert metric(owner, f'loot_account_bytes{{account="{key.account}"}}') <= quota
            assert metric(owner, 'loot_quota_refused_total{reason="ACCOUNT_BYTES_QUOTA"}') == 2
    finally:
        cluster.stop()


def test_databases_moved_by_a_handoff_count_on_the_shard_receiving_them(tmp_path: Path) -> None:
    quota = 30
    cluster = start_cluster(tmp_path / "cluster", env={"LOOT_ACCOUNT_DATABASES": str(quota), "LOOT_METRICS_PORT": "0",
                                                       "LOOT_MEMBERSHIP_POLL": "0.2", "LOOT_DURABILITY": "normal"},
                            membership_file=True)
    try:
        key = Key.generate()
        before = [f"t{number}" for number in range(20)]
        for tenant in before:
            assert create(cluster.address, key, tenant) == ""
        cluster.scale(3)
        ring, sample = Ring(cluster.names), f'loot_account_databases{{account="{key.account}"}}'
        held = Counter(ring.owner(database_id(key.account, "app", tenant)) for tenant in before)
        assert {name: metric(cluster.shards[name], sample) for name in cluster.names} == {
            name: held[name] for name in cluster.names}, "each database counted once, where it now is"
        newcomer = "shard-2"
        share = database_share(quota, ring.fraction(newcomer))
        assert 0 < held[newcomer] < share
        fresh = tenants_by_shard(key, tuple(cluster.names), share - held[newcomer] + 1, "after")[newcomer]
        outcomes = [create(cluster.address, key, tenant) for tenant in fresh]
        assert outcomes[:-1] == [""] * (share - held[newcomer]), "the moved databases took part of its share"
        assert outcomes[-1].startswith(f"ACCOUNT_DATABASE_QUOTA count={share} "), outcomes[-1]
    finally:
        cluster.stop()


def test_a_transaction_past_the_bytes_quota_is_rolled_back_with_the_reason_and_gives_its_room_back(
        tmp_path: Path) -> None:
    cluster = start_cluster(tmp_path / "cluster", env={"LOOT_ACCOUNT_BYTES": str(300_000)})
    try:
        with SdkClient(cluster.address) as sdk:
            db = sdk.database("app", "a", key=Key.generate(), schema=SCHEMA)
            with pytest.raises(Aborted) as aborted, db.transaction() as tx:
                for _ in range(10):  # 500 KB
                    tx.execute("INSERT INTO t VALUES (zeroblob(50000))")
            assert (aborted.value.reason, aborted.value.metadata["cause"]) == ("TRANSACTION_ABORTED", "ACCOUNT_BYTES_QUOTA")
            assert db.execute("SELECT count(*) FROM t").rows == [(0,)]
            for _ in range(4):  # 200 KB: the pages the rollback took back count no more
                db.execute("INSERT INTO t VALUES (zeroblob(50000))")
    finally:
        cluster.stop()
