"""The shard's catalog (docs/shard.md, "The catalog") with real processes: one row per database a
shard holds, naming whose it is, exact through creation, destroy and a 2 -> 3 -> 2 rebalance under writes."""

from __future__ import annotations

import time
from pathlib import Path

import apsw
import pytest

from loot import Client as SdkClient
from loot.cli.local_cluster import LocalCluster, shard_names
from loot.ids import database_id
from loot.shard import catalog
from loot.shard.catalog import Identity
from loot.shard.schema.history import digest
from loot.shard.storage import Storage
from loot.tokens import Key, mint
from tests.client import Client
from tests.conftest import start_cluster
from tests.test_rebalance import SCHEMA, Writers, _live_files

pytestmark = pytest.mark.cluster


def catalog_rows(cluster: LocalCluster) -> dict[str, list[tuple]]:
    """database id -> (shard, account, name, tenant, schema hash) of each catalog row naming it."""
    found: dict[str, list[tuple]] = {}
    for shard_dir in sorted(cluster.data.glob("shard-*")):
        path = shard_dir / catalog.FILE
        if not path.exists():
            continue
        conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
        try:
            for row in conn.execute("SELECT database_id, account, name, tenant, schema_hash FROM databases"):
                found.setdefault(row[0], []).append((shard_dir.name, *row[1:]))
        finally:
            conn.close()
    return found


def assert_catalog_matches_files(cluster: LocalCluster, key: Key, tenants: list[str]) -> None:
    rows, files = catalog_rows(cluster), _live_files(cluster)
    expected = {database_id(key.account, "app", tenant): tenant for tenant in tenants}
    assert set(rows) == set(files) == set(expected)
    for db, tenant in expected.items():
        assert rows[db] == [(files[db][0], key.account, "app", tenant, digest(SCHEMA))], tenant


def assert_listed(cluster: LocalCluster, key: Key, tenants: list[str]) -> None:
    """The account method, across shards, lists each database once, with what was written last."""
    with SdkClient(cluster.address) as sdk:
        listed = list(sdk.account(key).databases(page_size=17))
    assert [info.tenant for info in listed] == sorted(tenants)
    assert all(info.last_write >= info.created and info.bytes > 0 for info in listed)


def test_catalog_follows_creates_destroys_and_a_rebalance(tmp_path: Path, key: Key) -> None:
    cluster = start_cluster(tmp_path / "cluster", env={"LOOT_MEMBERSHIP_POLL": "0.2"}, membership_file=True)
    try:
        tenants = [f"t{i}" for i in range(120)]
        with Client(cluster.address) as client:
            for tenant in tenants:
                client.execute(mint(key, "app", tenant, schema=SCHEMA), "INSERT INTO notes VALUES (0)")
            for tenant in tenants[:20]:
                client.execute(mint(key, "app", tenant, destroy=True), "SELECT 1")
        alive = tenants[20:]
        assert_catalog_matches_files(cluster, key, alive)

        writers = Writers(cluster.address, key, alive)
        try:
            time.sleep(0.5)
            cluster.scale(3)
            time.sleep(0.5)
        finally:
            writers.stop()
        assert set(_live_files(cluster)) and any(shard == "shard-2" for shards in _live_files(cluster).values()
                                                for shard in shards)
        assert_catalog_matches_files(cluster, key, alive)
        assert len(shard_names(3)) == len({row[0][0] for row in catalog_rows(cluster).values()})
        assert_listed(cluster, key, alive)

        writers = Writers(cluster.address, key, alive)
        try:
            time.sleep(0.5)
            cluster.scale(2)
        finally:
            writers.stop()
        assert_catalog_matches_files(cluster, key, alive)
        assert_listed(cluster, key, alive)
    finally:
        cluster.stop()


def test_a_row_whose_file_never_appeared_is_dropped_when_the_shard_starts(tmp_path: Path) -> None:
    """A crash between a row and its file (creation, a handoff's install) leaves a row without a file."""
    real = database_id("account", "app", "alice")
    storage = Storage(tmp_path, catalog=True)
    storage.open(real, SCHEMA, Identity("account", "app", "alice")).close()
    storage.catalog.add(catalog.Entry("f" * 64, "account", "app", "ghost", 1.0, 1.0, 4096, ""))
    storage.catalog.close()
    assert Storage(tmp_path, catalog=True).catalog.ids() == [real]


def test_a_shard_with_a_catalog_refuses_to_create_a_database_it_cannot_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="whose it is"):
        Storage(tmp_path, catalog=True).open(database_id("account", "app", "alice"), SCHEMA)
    assert not list(tmp_path.glob("??/??/*.sqlite"))


def test_a_write_mark_waits_while_another_process_holds_the_catalog(tmp_path: Path) -> None:
    """The replicator (docs/backups.md) locks catalog.db while it ships it: a request's write mark that
    cannot be written then stays pending instead of failing the request (it failed INTERNAL)."""
    kept = catalog.Catalog(tmp_path, power_safe=False)
    entry = catalog.Entry("a" * 64, "acct", "app", "t", 1.0, 1.0, 10, "")
    kept.add(entry)
    holder = apsw.Connection(str(tmp_path / catalog.FILE))
    holder.execute("BEGIN IMMEDIATE")
    try:
        time.sleep(catalog._FLUSH_SECONDS)
        kept.wrote(entry.database_id, 99, "h")  # waits the busy timeout, then keeps the mark
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert kept.get(entry.database_id).bytes == 99
    kept.close()
