"""Running Loot in production: request ids across router -> shard, JSON logs,
Prometheus metrics, graceful shutdown on SIGTERM, online backups, health probes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import apsw
import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.client import Client, rows, statement
from loot.ids import database_id
from loot.cli.local_cluster import LocalCluster
from loot.ring import Ring
from loot.secret import SECRET_HEADER
from loot.status import error_info
from loot.tokens import Key, mint
from loot.v1 import database_pb2 as pb
from tests.schemas import open_table
from loot.shard.storage import Storage
from tests.conftest import start_cluster
from tests.test_cluster import _shard_call

pytestmark = pytest.mark.cluster  # clusters started by its own fixtures and test bodies, and `loot backup`/`loot health`

NOTES = open_table("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)", "notes")
# Half a second or more of SQLite work (more on a busy machine): in flight when SIGTERM lands.
SLOW_ROWS = 4_000_000
SLOW_COUNT = f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {SLOW_ROWS}) SELECT count(*) FROM c"


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A cluster logging JSON and serving metrics on free ports."""
    cluster = start_cluster(tmp_path_factory.mktemp("observed"),
                            env={"LOOT_LOG_FORMAT": "json", "LOOT_METRICS_PORT": "0"})
    yield cluster
    cluster.stop()


def json_lines(cluster: LocalCluster, process: str) -> list[dict]:
    prefix = f"{process}: {{"
    return [json.loads(line[len(process) + 2:]) for line in cluster.sink.lines if line.startswith(prefix)]


def access_lines(cluster: LocalCluster, process: str, request_id: str) -> list[dict]:
    return [entry for entry in json_lines(cluster, process)
            if entry.get("logger") == "loot.access" and entry.get("request_id") == request_id]


def wait_for(condition, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
    return result


def execute_with_call(client: Client, token: str, sql: str, metadata: tuple = ()):
    request = pb.ExecuteRequest(statement=statement(sql))
    return client.stub.Execute.with_call(request, metadata=(("authorization", f"Bearer {token}"), *metadata), timeout=30)


def owner_of(cluster: LocalCluster, key: Key, name: str, tenant: str) -> str:
    return Ring(cluster.names).owner(database_id(key.account, name, tenant))


def test_client_request_id_reaches_the_shard_log(observed: LocalCluster, key: Key) -> None:
    token = mint(key, "ops", "rid", schema=NOTES)
    with Client(observed.address) as client:
        _, call = execute_with_call(client, token, "SELECT 1", (("x-request-id", "trace-abc-123"),))
    assert ("x-request-id", "trace-abc-123") in tuple(call.trailing_metadata())
    shard = owner_of(observed, key, "ops", "rid")
    router_entry = wait_for(lambda: access_lines(observed, "router", "trace-abc-123"))[0]
    shard_entry = wait_for(lambda: access_lines(observed, shard, "trace-abc-123"))[0]
    assert router_entry["method"] == "/loot.v1.Database/Execute" and router_entry["code"] == "OK"
    assert shard_entry["method"] == "/loot.internal.v1.Shard/Execute" and shard_entry["code"] == "OK"
    assert shard_entry["level"] == "info" and shard_entry["duration_ms"] >= 0


@pytest.mark.parametrize("sent", [None, "has spaces {\"json\": 1}", "x" * 500])
def test_router_makes_a_request_id_when_the_client_sent_none_or_junk(observed: LocalCluster, key: Key, sent) -> None:
    token = mint(key, "ops", "rid-made", schema=NOTES)
    with Client(observed.address) as client:
        _, call = execute_with_call(client, token, "SELECT 1", () if sent is None else (("x-request-id", sent),))
    made = dict(call.trailing_metadata())["x-request-id"]
    assert made != sent and len(made) == 32
    shard = owner_of(observed, key, "ops", "rid-made")
    assert wait_for(lambda: access_lines(observed, shard, made))[0]["code"] == "OK"


def test_a_refused_call_returns_its_request_id_with_the_status(observed: LocalCluster, key: Key) -> None:
    token = mint(key, "ops", "rid-refused", schema=NOTES)
    with Client(observed.address) as client, pytest.raises(grpc.RpcError) as refused:
        execute_with_call(client, token, "SELEC 1", (("x-request-id", "trace-refused"),))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert ("x-request-id", "trace-refused") in tuple(refused.value.trailing_metadata())
    assert error_info(refused.value).domain == "loot", "the rich status travels next to the request id"


def scrape(cluster: LocalCluster, process: str) -> dict[tuple[str, tuple], float]:
    line = next(line for line in cluster.sink.lines if line.startswith(f"{process}: ") and " metrics on " in line)
    address = line.rsplit(" ", 1)[1]
    text = urllib.request.urlopen(f"http://{address}/metrics", timeout=10).read().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_metrics_count_requests_latency_databases_and_schema_applies(observed: LocalCluster, key: Key) -> None:
    token = mint(key, "ops", "metrics", schema=NOTES)
    with Client(observed.address) as client:
        for _ in range(3):
            client.execute(token, "INSERT INTO notes (body) VALUES ('x')")
        with pytest.raises(grpc.RpcError):
            client.execute(token, "SELEC oops")
    shard = owner_of(observed, key, "ops", "metrics")
    router, owner = scrape(observed, "router"), scrape(observed, shard)

    execute = (("method", "/loot.v1.Database/Execute"),)
    assert router[("loot_requests_total", (("code", "OK"), *execute))] >= 3
    assert router[("loot_requests_total", (("code", "INVALID_ARGUMENT"), *execute))] >= 1
    assert router[("loot_request_duration_seconds_count", execute)] >= 4
    assert router[("loot_request_duration_seconds_bucket", (("le", "+Inf"), *execute))] >= 4
    shard_execute = (("method", "/loot.internal.v1.Shard/Execute"),)
    assert owner[("loot_requests_total", (("code", "OK"), *shard_execute))] >= 3
    assert owner[("loot_open_databases", ())] >= 1
    assert owner[("loot_database_cache_misses_total", ())] >= 1
    assert owner[("loot_database_cache_hits_total", ())] >= 3
    assert owner[("loot_queued_requests", ())] == 0
    assert owner[("loot_schema_applies_total", ())] >= 1
    assert not any(name == "loot_requests_total" and ("method", "/grpc.health.v1.Health/Check") in labels
                   for name, labels in owner), "probes are not counted as traffic"


def test_metrics_show_calls_queued_behind_a_busy_database(observed: LocalCluster, key: Key) -> None:
    token = mint(key, "ops", "queue", schema=NOTES)
    shard = owner_of(observed, key, "ops", "queue")
    with Client(observed.address) as client:
        client.execute(token, "SELECT 1")
        calls = [threading.Thread(target=client.execute, args=(token, SLOW_COUNT), kwargs={"timeout": 90})
                 for _ in range(2)]
        for call in calls:
            call.start()
            time.sleep(0.05)
        most_queued = 0
        while any(call.is_alive() for call in calls):  # each call ends within its 90 s deadline
            most_queued = max(most_queued, scrape(observed, shard)[("loot_queued_requests", ())])
            time.sleep(0.02)
    assert most_queued == 1, "the second call waited for the first"
    assert scrape(observed, shard)[("loot_queued_requests", ())] == 0


@pytest.mark.parametrize("victim", ["shard", "router"])
def test_sigterm_lets_the_call_in_flight_finish_then_refuses_and_closes_cleanly(tmp_path: Path, key: Key,
                                                                                victim: str) -> None:
    # A generous grace and statement limit, so a busy test machine cannot turn "finishes in time" into a
    # cancellation or the slow count into DEADLINE_EXCEEDED.
    own_cluster = start_cluster(tmp_path / "cluster", env={"LOOT_SHUTDOWN_GRACE": "60", "LOOT_STATEMENT_SECONDS": "60"})
    try:
        sigterm_during_a_call(own_cluster, key, victim)
    finally:
        own_cluster.stop()


def sigterm_during_a_call(own_cluster: LocalCluster, key: Key, victim: str) -> None:
    token = mint(key, "ops", "graceful", schema=NOTES)
    shard = own_cluster.shards[owner_of(own_cluster, key, "ops", "graceful")]
    process = shard if victim == "shard" else own_cluster.router
    with Client(own_cluster.address) as client:
        client.execute(token, "INSERT INTO notes (body) VALUES ('kept')")
        outcome: dict = {}
        slow = threading.Thread(target=lambda: outcome.update(result=client.execute(token, SLOW_COUNT, timeout=90)))
        slow.start()
        time.sleep(0.15)  # the slow statement is now running on the shard
        assert slow.is_alive(), "SIGTERM must land while the call is in flight"
        process.signal(signal.SIGTERM)
        slow.join(90)
        assert rows(outcome["result"].result) == [(SLOW_ROWS,)], "the call in flight was answered in full"
        process.process.wait(60)
        assert process.process.returncode == 0
        with pytest.raises(grpc.RpcError) as refused:
            client.execute(token, "SELECT count(*) FROM notes", timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    if victim == "shard":
        data = own_cluster.data / shard.name
        assert list(data.rglob("*.sqlite")) and not list(data.rglob("*.sqlite-wal")), \
            "databases were closed cleanly: the last connection's close checkpoints and removes the WAL"


def test_backup_copies_every_database_consistently_while_writes_go_on(own_cluster: LocalCluster, key: Key,
                                                                     tmp_path: Path) -> None:
    tokens = [mint(key, "ops", f"backup-{i}", schema=NOTES) for i in range(6)]
    stop = threading.Event()
    acknowledged = {token: 0 for token in tokens}

    def keep_writing(client: Client) -> None:
        while not stop.is_set():
            for token in tokens:
                client.execute(token, "INSERT INTO notes (body) VALUES ('row')")
                acknowledged[token] += 1

    with Client(own_cluster.address) as client:
        for token in tokens:
            client.execute(token, "INSERT INTO notes (body) VALUES ('first')")
            acknowledged[token] += 1
        writer = threading.Thread(target=keep_writing, args=(client,))
        writer.start()
        time.sleep(0.3)
        before = dict(acknowledged)
        copies = []
        for name in own_cluster.names:
            out = tmp_path / name
            done = subprocess.run([sys.executable, "-m", "loot", "backup", "--data", str(own_cluster.data / name),
                                   "--out", str(out)], capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
            copies += list(out.rglob("*.sqlite"))
        stop.set()
        writer.join(30)
    assert len(copies) == len(tokens)
    counts = []
    for copy in copies:
        conn = apsw.Connection(str(copy), flags=apsw.SQLITE_OPEN_READONLY)
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA journal_mode").fetchall() == [("delete",)]
        counts.append(conn.execute("SELECT count(*) FROM notes").fetchall()[0][0])
        conn.close()
    assert sum(counts) >= sum(before.values()), "every write acknowledged before the backup started is in it"
    assert sum(counts) <= sum(acknowledged.values()) + len(tokens), "no more than was written"


def test_backup_refuses_a_non_empty_target(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old").write_text("keep me")
    done = subprocess.run([sys.executable, "-m", "loot", "backup", "--data", str(tmp_path / "data"),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "not empty" in done.stderr
    assert (tmp_path / "out" / "old").read_text() == "keep me"


def test_health_probe_exit_codes(cluster: LocalCluster) -> None:
    ok = subprocess.run([sys.executable, "-m", "loot", "health", cluster.address], capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0 and "SERVING" in ok.stdout
    down = subprocess.run([sys.executable, "-m", "loot", "health", "127.0.0.1:1", "--timeout", "1"],
                          capture_output=True, text=True, timeout=30)
    assert down.returncode == 1 and "not healthy" in down.stderr


def test_during_a_rotation_shards_accept_the_other_secret_too(tmp_path: Path, key: Key) -> None:
    other = "the-other-secret-of-the-rotation-0123"
    cluster = start_cluster(tmp_path / "rotating", env={"LOOT_CLUSTER_SECRET_ROTATING": other})
    try:
        current = cluster.env["LOOT_CLUSTER_SECRET"]
        for name, shard in cluster.shards.items():
            for secret, accepted in ((current, True), (other, True), (other[:-1] + "X", False)):
                try:
                    _shard_call(shard.address, key, ((SECRET_HEADER, secret),))
                    code = grpc.StatusCode.OK
                except grpc.RpcError as error:
                    code = error.code()  # FAILED_PRECONDITION when the other shard owns the database
                assert (code != grpc.StatusCode.UNAUTHENTICATED) == accepted, (name, secret, code)
    finally:
        cluster.stop()


def test_backups_kept_in_the_data_directory_are_not_backed_up_again(tmp_path: Path) -> None:
    data = tmp_path / "data"
    storage = Storage(data)
    for tenant in ("a", "b"):
        storage.open(database_id("account", "app", tenant)).close()
    for n in (1, 2):
        done = subprocess.run([sys.executable, "-m", "loot", "backup", "--data", str(data),
                               "--out", str(data / "backups" / str(n))], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert "backed up 2 database(s)" in done.stdout
