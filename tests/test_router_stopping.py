"""A router stopped with calls in flight: what their callers are told (docs/errors.md)."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import grpc
import pytest

from tests.client import Client
from loot.status import error_info
from loot.tokens import Key, mint
from tests.conftest import start_cluster
from tests.schemas import open_table

pytestmark = pytest.mark.cluster  # starts its own clusters

NOTES = open_table("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)", "notes")
# A write that runs far longer than the router's 2 s grace, on any machine.
SLOW_WRITE = ("INSERT INTO notes (body) SELECT 'slow' FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 "
              "FROM c WHERE x < 40000000) SELECT max(x) FROM c)")


def test_a_call_outliving_the_routers_grace_is_outcome_unknown(tmp_path: Path) -> None:
    # Not gRPC's UNAVAILABLE "Cancelling all calls": the write goes on on its shard and may commit.
    cluster = start_cluster(tmp_path / "cluster", shards=1,
                            env={"LOOT_SHUTDOWN_GRACE": "2", "LOOT_STATEMENT_SECONDS": "600"})
    key = Key.generate()
    token = mint(key, "ops", "stopping", schema=NOTES)
    try:
        with Client(cluster.address) as client:
            client.execute(token, "SELECT 1")
            failed: list[grpc.RpcError] = []

            def write() -> None:
                try:
                    client.execute(token, SLOW_WRITE, timeout=600)
                except grpc.RpcError as error:
                    failed.append(error)

            writer = threading.Thread(target=write)
            writer.start()
            time.sleep(0.5)
            assert writer.is_alive(), "SIGTERM must land while the write is in flight"
            cluster.router.signal(signal.SIGTERM)
            writer.join(600)
            assert cluster.router.process.wait(60) == 0
        (error,) = failed
        info = error_info(error)
        assert (error.code(), info and info.reason) == (grpc.StatusCode.UNKNOWN, "OUTCOME_UNKNOWN"), error.details()
    finally:
        cluster.stop()
