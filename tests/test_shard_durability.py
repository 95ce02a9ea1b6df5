"""Acknowledged writes survive kill -9 of the shards (docs/shard.md), and so does
every database file: complete and passing integrity_check, never half-made."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import apsw
import grpc

from tests.client import Client, rows
from loot.cli.local_cluster import LocalCluster
from loot.tokens import Key, mint
from tests.schemas import open_table

SCHEMA = open_table("CREATE TABLE t (writer INTEGER, n INTEGER, PRIMARY KEY (writer, n))", "t")
WRITERS = 4
KILLS = 3
WRITES_BETWEEN_KILLS = 40


class Writer(threading.Thread):
    """Inserts rows into its own databases, moving to a new database every few rows, and
    remembers each acknowledged row; failures (the shard is down) are simply retried later. A retry
    refused with FAILED_PRECONDITION (a duplicate key: an earlier attempt wrote the row, its reply was
    lost to a kill) moves on to the next row, not counting that one as acknowledged: retrying it forever
    stalled the writer."""

    def __init__(self, address: str, key: Key, number: int, stop: threading.Event):
        super().__init__(daemon=True)
        self.address, self.key, self.number, self.stop = address, key, number, stop
        self.acknowledged: dict[str, list[int]] = {}

    def run(self) -> None:
        with Client(self.address) as client:
            n = 0
            while not self.stop.is_set():
                tenant = f"w{self.number}-db{n // 5}"
                try:
                    client.execute(mint(self.key, "durable", tenant, schema=SCHEMA),
                                   "INSERT INTO t VALUES (?, ?)", [self.number, n], timeout=5)
                except grpc.RpcError as error:
                    if error.code() == grpc.StatusCode.FAILED_PRECONDITION:
                        n += 1
                    time.sleep(0.05)
                    continue
                self.acknowledged.setdefault(tenant, []).append(n)
                n += 1


def wait_for_writes(writers: list[Writer], count: int, patience: float = 30.0) -> None:
    """Until the writers have `count` more acknowledged rows (at least a second): a fixed pause left
    a busy machine with too few writes between kills to prove anything."""
    def total() -> int:
        return sum(len(ns) for writer in writers for ns in list(writer.acknowledged.values()))

    goal, started = total() + count, time.monotonic()
    time.sleep(1.0)
    while total() < goal and time.monotonic() - started < patience:
        time.sleep(0.1)


def test_acknowledged_writes_survive_kill_9(own_cluster: LocalCluster, key: Key) -> None:
    stop = threading.Event()
    writers = [Writer(own_cluster.address, key, number, stop) for number in range(WRITERS)]
    for writer in writers:
        writer.start()
    for round in range(KILLS):
        wait_for_writes(writers, WRITES_BETWEEN_KILLS)
        for name in own_cluster.names:
            own_cluster.shards[name].signal(signal.SIGKILL)
            own_cluster.shards[name].wait(10)
        for name in own_cluster.names:
            own_cluster.restart_shard(name)
    wait_for_writes(writers, WRITES_BETWEEN_KILLS)
    stop.set()
    for writer in writers:
        writer.join(30)

    acknowledged = {tenant: ns for writer in writers for tenant, ns in writer.acknowledged.items()}
    assert sum(map(len, acknowledged.values())) > 100, "the writers barely wrote: the test proves nothing"
    with Client(own_cluster.address) as client:
        for tenant, ns in acknowledged.items():
            stored = {n for _, n in rows(client.execute(mint(key, "durable", tenant), "SELECT writer, n FROM t").result)}
            assert set(ns) <= stored, f"{tenant} lost acknowledged rows {sorted(set(ns) - stored)}"

    own_cluster.stop()
    files = list(own_cluster.data.rglob("*.sqlite"))
    assert len(files) >= len(acknowledged)
    for path in files:
        _assert_whole(path)


def _assert_whole(path: Path) -> None:
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READWRITE)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)], path
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
        assert {"_filters", "_rules", "t"} <= tables, f"{path} is half-made: {tables}"
    finally:
        conn.close()
