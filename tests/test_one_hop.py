"""Shards serving the public API (loot/node/): a call at the owner's public port runs in-process, one at
another shard's is forwarded as a router forwards it, and both answer alike; Topology on routers and shards."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import sys
from collections.abc import Iterator

import grpc
import httpx
import pytest

from tests.client import Client, rows
from tests.conftest import refused, start_cluster
from tests.schemas import open_table
from tests.test_cluster import _shard_call
from tests.test_operations import scrape
from loot.cli.local_cluster import LocalCluster
from loot.ids import database_id
from loot.ring import Ring
from loot.secret import SECRET_HEADER
from loot.tokens import Key, mint
from loot.v1 import database_pb2 as pb
from loot.v1 import database_pb2_grpc

pytestmark = pytest.mark.cluster  # clusters started by its fixture and its tests, and one `loot shard`
SCHEMA = open_table("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)", "notes")


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """Two shards with public ports and metrics, their addresses in a membership file."""
    cluster = start_cluster(tmp_path_factory.mktemp("nodes"), env={"LOOT_METRICS_PORT": "0"}, membership_file=True)
    yield cluster
    cluster.stop()


def topology(address: str, token: str) -> pb.TopologyResponse:
    with grpc.insecure_channel(address) as channel:
        return database_pb2_grpc.DatabaseStub(channel).Topology(
            pb.TopologyRequest(), metadata=(("authorization", f"Bearer {token}"),), timeout=30)


def settled_topology(cluster: LocalCluster, token: str) -> pb.TopologyResponse:
    """The router's answer once every shard's public address is in it (the file is rewritten after they listen)."""
    return _wait(lambda: (answer := topology(cluster.address, token)) and all(s.address for s in answer.shards)
                 and answer)


def _wait(condition, attempts: int = 600):
    for _ in range(attempts):
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met")


def owner_and_other(cluster: LocalCluster, key: Key, tenant: str) -> tuple[str, str]:
    answer = settled_topology(cluster, mint(key, "app", tenant, schema=SCHEMA))
    owner = Ring(shard.name for shard in answer.shards).owner(database_id(key.account, "app", tenant))
    return owner, next(name for name in cluster.shards if name != owner)


def calls(cluster: LocalCluster, process: str, method: str) -> float:
    return sum(value for (name, labels), value in scrape(cluster, process).items()
               if name == "loot_requests_total" and dict(labels)["method"] == method)


def test_topology_names_every_shard_with_its_public_address_and_the_ring(nodes: LocalCluster, key: Key) -> None:
    token = mint(key, "app", "topology")
    answer = settled_topology(nodes, token)
    assert {(s.name, s.address) for s in answer.shards} == {(n, c.public) for n, c in nodes.shards.items()}
    assert (answer.ring_hash, answer.points) == ("md5", 160)
    for shard in nodes.shards.values():  # each shard answers what the router does, once it read the same file
        assert _wait(lambda: topology(shard.public, token) == answer)


def test_topology_needs_a_valid_token(nodes: LocalCluster) -> None:
    with grpc.insecure_channel(nodes.shards["shard-0"].public) as channel:
        stub = database_pb2_grpc.DatabaseStub(channel)
        refused(lambda: stub.Topology(pb.TopologyRequest(), timeout=30), grpc.StatusCode.UNAUTHENTICATED, "MISSING_TOKEN")


def test_a_call_at_the_owners_public_port_runs_in_process(nodes: LocalCluster, key: Key) -> None:
    owner, _ = owner_and_other(nodes, key, "in-process")
    token = mint(key, "app", "in-process", schema=SCHEMA)
    forwarded_before = calls(nodes, owner, "/loot.internal.v1.Shard/Execute")
    public_before = calls(nodes, owner, "/loot.v1.Database/Execute")
    with Client(nodes.shards[owner].public) as client:
        client.execute(token, "INSERT INTO notes (body) VALUES ('here')")
        assert rows(client.execute(token, "SELECT body FROM notes").result) == [("here",)]
    assert calls(nodes, owner, "/loot.v1.Database/Execute") == public_before + 2
    assert calls(nodes, owner, "/loot.internal.v1.Shard/Execute") == forwarded_before, "no Forward message"


def test_a_call_at_another_shard_is_forwarded_and_answered_the_same(nodes: LocalCluster, key: Key) -> None:
    owner, other = owner_and_other(nodes, key, "forwarded")
    token = mint(key, "app", "forwarded", schema=SCHEMA)
    forwarded_before = calls(nodes, owner, "/loot.internal.v1.Shard/Batch")
    with Client(nodes.shards[other].public) as elsewhere, Client(nodes.shards[owner].public) as here, \
            Client(nodes.address) as router:
        elsewhere.execute(token, "INSERT INTO notes (body) VALUES ('there')")
        answers = [rows(c.batch(token, [("SELECT body FROM notes", ()), ("SELECT count(*) FROM notes", ())]).results[0])
                   for c in (elsewhere, here, router)]
    assert answers == [[("there",)]] * 3
    assert calls(nodes, owner, "/loot.internal.v1.Shard/Batch") == forwarded_before + 2  # the other shard's, the router's


def test_errors_at_a_public_port_are_the_routers(nodes: LocalCluster, key: Key) -> None:
    owner, other = owner_and_other(nodes, key, "errors")
    token = mint(key, "app", "errors", schema=SCHEMA)
    for name in (owner, other):
        with Client(nodes.shards[name].public) as client:
            refused(lambda: client.execute(token, "SELECT * FROM missing"), grpc.StatusCode.INVALID_ARGUMENT)
            refused(lambda: client.execute("not-a-token", "SELECT 1"), grpc.StatusCode.UNAUTHENTICATED)
            with grpc.insecure_channel(nodes.shards[name].public) as channel:  # bytes that are no request
                garbled = channel.unary_unary("/loot.v1.Database/Execute")
                refused(lambda: garbled(b"\xff\xff", metadata=(("authorization", f"Bearer {token}"),), timeout=30),
                        grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED_REQUEST")


def test_a_transaction_at_either_public_port(nodes: LocalCluster, key: Key) -> None:
    from loot import Client as SdkClient
    owner, other = owner_and_other(nodes, key, "transaction")
    for name in (owner, other):
        with SdkClient(nodes.shards[name].public, direct=False) as client:  # at this port, owner or not
            db = client.database("app", "transaction", key=key, schema=SCHEMA)
            with db.transaction() as tx:
                tx.execute("INSERT INTO notes (body) VALUES (?)", (name,))
    with SdkClient(nodes.address) as client:
        db = client.database("app", "transaction", key=key, schema=SCHEMA, direct=False)
        assert sorted(db.execute("SELECT body FROM notes").rows) == sorted([(owner,), (other,)])


def test_the_public_port_serves_no_internal_method(nodes: LocalCluster, key: Key) -> None:
    secret = ((SECRET_HEADER, nodes.env["LOOT_CLUSTER_SECRET"]),)
    with pytest.raises(grpc.RpcError) as failed:
        _shard_call(nodes.shards["shard-0"].public, key, secret)
    assert failed.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_the_allowlist_applies_at_shards_public_ports(tmp_path, key: Key) -> None:
    served = Key.generate()
    cluster = start_cluster(tmp_path / "listed", env={"LOOT_ACCOUNTS": served.account})
    try:
        for shard in cluster.shards.values():
            with Client(shard.public) as client:
                refused(lambda: client.execute(mint(key, "app", "x"), "SELECT 1"), grpc.StatusCode.PERMISSION_DENIED,
                        "ACCOUNT_NOT_ALLOWED")
    finally:
        cluster.stop()


def test_a_public_port_beyond_loopback_needs_an_allowlist(tmp_path) -> None:
    command = [sys.executable, "-m", "loot", "shard", "--name", "s", "--shards", "s", "--data", str(tmp_path),
               "--host", "0.0.0.0", "--port", "0", "--public-port", "0"]
    env = {**os.environ, "LOOT_CLUSTER_SECRET": Key.generate().account}  # any 32 characters or more
    finished = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert finished.returncode != 0
    assert "no account allowlist" in finished.stderr


def test_a_dead_shard_fails_only_its_tenants_fast_while_the_others_go_direct(own_cluster: LocalCluster, key: Key) -> None:
    from loot import Client as SdkClient
    from loot.errors import Unavailable
    ring = Ring(own_cluster.names)
    tenants = {ring.owner(database_id(key.account, "app", f"t{i}")): f"t{i}" for i in range(50)}
    tokens = {name: mint(key, "app", tenant, schema=SCHEMA) for name, tenant in tenants.items()}
    with SdkClient(own_cluster.address, timeout=120) as client:
        dbs = {name: client.open(token) for name, token in tokens.items()}
        for db in dbs.values():
            db.execute("INSERT INTO notes (body) VALUES ('before')")
        assert set(client.routes.channels) == {shard.public for shard in own_cluster.shards.values()}
        _wait(lambda: client.routes.stub(tokens["shard-1"]))  # its channel connected: calls go straight there
        own_cluster.shards["shard-0"].signal(signal.SIGKILL)
        own_cluster.shards["shard-0"].wait(60)
        with pytest.raises(Unavailable) as lost:
            dbs["shard-0"].execute("SELECT count(*) FROM notes")
        # The router's word once the SDK saw the shard's connection gone; "" if it was still up when the call left.
        assert lost.value.reason in ("SHARD_UNAVAILABLE", "")
        forwarded, direct = (access_lines(own_cluster, "shard-1", "internal.v1.Shard/Execute"),
                             access_lines(own_cluster, "shard-1", "Database/Execute code=OK"))
        for _ in range(3):
            assert dbs["shard-1"].execute("SELECT count(*) FROM notes").rows == [(1,)]
        _wait(lambda: access_lines(own_cluster, "shard-1", "Database/Execute code=OK") == direct + 3)
        assert access_lines(own_cluster, "shard-1", "internal.v1.Shard/Execute") == forwarded  # not via the router


def access_lines(cluster: LocalCluster, process: str, method_and_code: str) -> int:
    """How many calls `process` logged whose `method=... code=...` ends with `method_and_code`."""
    return sum(1 for line in list(cluster.sink.lines) if line.startswith(f"{process}: ") and "loot.access" in line
               and f"{method_and_code}" in line.split("method=/", 1)[-1])


def test_a_shards_public_port_serves_http_too(tmp_path, key: Key) -> None:
    """`--http-port` beside `--public-port`: Connect calls at a shard run as at its public gRPC port, forwarded
    when another shard owns the database (docs/http.md)."""
    cluster = start_cluster(tmp_path / "http", env={"LOOT_HTTP_PORT": "0"}, membership_file=True)
    try:
        owner, other = owner_and_other(cluster, key, "over-http")
        headers = {"authorization": f"Bearer {mint(key, 'app', 'over-http', schema=SCHEMA)}"}
        insert = {"statement": {"sql": "INSERT INTO notes (body) VALUES ('web')"}}
        select = {"statement": {"sql": "SELECT body FROM notes"}}
        urls = [cluster.shards[owner].http, cluster.shards[other].http, cluster.http]
        assert all(urls), urls
        assert httpx.post(f"{urls[0]}/loot.v1.Database/Execute", json=insert, headers=headers,
                          timeout=30).json()["result"]["rowsWritten"] == "1"
        for url in urls:  # a shard forwards once it read its peers' addresses (the file is rewritten after they listen)
            answer = _wait(lambda: (answer := httpx.post(f"{url}/loot.v1.Database/Execute", json=select,
                                                         headers=headers, timeout=30)).status_code != 503 and answer)
            assert answer.status_code == 200, answer.text
            assert answer.json()["result"]["rows"] == [{"values": [{"text": "web"}]}]
    finally:
        cluster.stop()


def test_http_on_a_shard_needs_its_public_port(tmp_path) -> None:
    command = [sys.executable, "-m", "loot", "shard", "--name", "s", "--shards", "s", "--data", str(tmp_path),
               "--port", "0", "--http-port", "0"]
    env = {**os.environ, "LOOT_CLUSTER_SECRET": Key.generate().account}
    finished = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert finished.returncode != 0
    assert "needs --public-port" in finished.stderr
