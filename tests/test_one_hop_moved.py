"""A transaction that begins at a shard's public port just as a new membership takes its database away is
sent once to the new owner, as a router sends it (loot/node/one_hop.py), and applied there once."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest

from loot import Client as SdkClient
from loot.cli.local_cluster import LocalCluster, shard_names
from loot.errors import Aborted
from loot.ids import database_id
from loot.ring import Ring
from loot.tokens import Key
from tests.conftest import start_cluster
from tests.schemas import open_table
from tests.test_operations import scrape

pytestmark = pytest.mark.cluster  # a cluster started by the test
SCHEMA = open_table("CREATE TABLE notes (n INTEGER)", "notes")


def _queued(cluster: LocalCluster, shard: str) -> float:
    return scrape(cluster, shard)[("loot_queued_requests", ())]


def _wait(condition, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.05)


def test_a_begin_queued_at_the_former_owner_goes_to_the_new_one(tmp_path: Path, key: Key) -> None:
    """The former owner admitted `begin` under the old membership; it waits behind another transaction
    until the fence, when the database is no longer this shard's: it goes to the new owner, not back to the
    client as WRONG_SHARD."""
    cluster = start_cluster(tmp_path / "cluster", env={"LOOT_METRICS_PORT": "0", "LOOT_TRANSACTION_IDLE_SECONDS": "120",
                                                       "LOOT_TRANSACTION_SECONDS": "300"}, membership_file=True)
    try:
        tenant = next(t for t in (f"t{i}" for i in range(200))
                      if Ring(shard_names(2)).owner(database_id(key.account, "app", t)) == "shard-0"
                      and Ring(shard_names(3)).owner(database_id(key.account, "app", t)) == "shard-2")
        cluster.add_shard("shard-2")
        with SdkClient(cluster.address, direct=False, timeout=300) as client:
            db = client.database("app", tenant, key=key, schema=SCHEMA)
            db.execute("INSERT INTO notes VALUES (0)")
            with pytest.raises(Aborted) as fenced, db.transaction() as holding:  # holds the database at shard-0
                holding.execute("INSERT INTO notes VALUES (1)")
                outcome: dict[str, object] = {}
                queued = threading.Thread(target=_transaction_at, args=(cluster.shards["shard-0"].public, key, tenant,
                                                                        outcome))
                queued.start()
                _wait(lambda: _queued(cluster, "shard-0") == 1, "the second transaction's wait at shard-0")
                cluster.publish_membership(shard_names(3))
                for child in cluster.children():
                    child.signal(signal.SIGHUP)
                queued.join()
                holding.execute("SELECT 1")  # the fence rolled it back already
            assert fenced.value.reason == "TRANSACTION_ABORTED"
            assert outcome == {"committed": [(0,), (2,)]}, outcome
            assert sorted(db.execute("SELECT n FROM notes").rows) == [(0,), (2,)]  # once, and not the fenced one
    finally:
        cluster.stop()


def _transaction_at(address: str, key: Key, tenant: str, outcome: dict[str, object]) -> None:
    """A transaction sent to `address` only (no direct routing, no fallback); records what it saw."""
    try:
        with SdkClient(address, direct=False, timeout=300) as client:
            with client.database("app", tenant, key=key, schema=SCHEMA).transaction() as tx:
                tx.execute("INSERT INTO notes VALUES (2)")
                outcome["committed"] = sorted(tx.execute("SELECT n FROM notes").rows)
    except Exception as error:  # the test's assertion shows it
        outcome["error"] = error
