"""The walking skeleton end to end: client -> router -> shard -> SQLite and back."""

from __future__ import annotations

import math
import signal
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.client import Client, rows
from loot.ids import database_id
from loot.internal.v1 import shard_pb2, shard_pb2_grpc
from loot.secret import SECRET_HEADER
from loot.ring import Ring
from loot.status import error_info
from loot.tokens import Key, mint
from loot.v1 import database_pb2 as pb
from loot.v1 import database_pb2_grpc
from tests.conftest import refused
from tests.schemas import open_table


NOTES = open_table("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)", "notes")


def test_tenants_and_accounts_are_isolated(client: Client, key: Key) -> None:
    other_account = Key.generate()
    tokens = {
        "alice": mint(key, "app", "alice", schema=NOTES),
        "bob": mint(key, "app", "bob", schema=NOTES),
        "alice@other": mint(other_account, "app", "alice", schema=NOTES),
    }
    for who, token in tokens.items():
        client.execute(token, "INSERT INTO notes (body) VALUES (?)", [f"secret of {who}"])
    for who, token in tokens.items():
        response = client.execute(token, "SELECT body FROM notes")
        assert rows(response.result) == [(f"secret of {who}",)]


def test_five_value_kinds_round_trip(client: Client, key: Key) -> None:
    token = mint(key, "app", "values", schema=open_table("CREATE TABLE v (x)", "v"))
    values = [None, 0, -(2**63), 2**63 - 1, 1.5, -0.0, math.inf, "", "nul\x00inside", "ünïcödé", b"", b"\x00\xff" * 100]
    for value in values:
        client.execute(token, "INSERT INTO v VALUES (?)", [value])
    got = [row[0] for row in rows(client.execute(token, "SELECT x FROM v ORDER BY rowid").result)]
    assert got == values
    assert [type(v) for v in got] == [type(v) for v in values]
    assert rows(client.execute(token, "SELECT :a, @b, $c", {"a": 1, "b": "two", "c": b"3"}).result) == [(1, "two", b"3")]


def test_result_metadata(client: Client, key: Key) -> None:
    token = mint(key, "app", "meta", schema=NOTES)
    written = client.execute(token, "INSERT INTO notes (body) VALUES ('a'), ('b')").result
    assert written.rows_written == 2 and written.last_insert_rowid == 2
    read = client.execute(token, "SELECT id, body, 1 + 1 AS two FROM notes").result
    assert [(c.name, c.decltype) for c in read.columns] == [("id", "INTEGER"), ("body", "TEXT"), ("two", "")]
    assert read.rows_read == 2 and read.rows_written == 0 and not read.HasField("last_insert_rowid")


def test_batch_is_one_transaction(client: Client, key: Key) -> None:
    token = mint(key, "app", "batch", schema=NOTES)
    with pytest.raises(grpc.RpcError) as failed:
        client.batch(token, [("INSERT INTO notes (body) VALUES ('kept?')", ()), ("INSERT INTO nowhere VALUES (1)", ())])
    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(failed.value).metadata["statement_index"] == "1"
    assert rows(client.execute(token, "SELECT count(*) FROM notes").result) == [(0,)]
    results = client.batch(token, [("INSERT INTO notes (body) VALUES ('x')", ()), ("SELECT body FROM notes", ())]).results
    assert rows(results[1]) == [("x",)]


def test_databases_spread_over_both_shards(cluster, client: Client, key: Key) -> None:
    for i in range(20):
        client.execute(mint(key, "spread", f"tenant-{i}", schema=NOTES), "INSERT INTO notes (body) VALUES ('x')")
    for name in cluster.names:
        files = list((cluster.data / name).rglob("*.sqlite"))
        assert files, f"{name} holds no database"
        assert all(len(f.stem) == 64 for f in files), "file names are database ids, never user strings"


def test_no_token_is_unauthenticated(cluster) -> None:
    channel = grpc.insecure_channel(cluster.address)
    stub = database_pb2_grpc.DatabaseStub(channel)
    with pytest.raises(grpc.RpcError) as failed:
        stub.Execute(pb.ExecuteRequest(statement=pb.Statement(sql="SELECT 1")), timeout=10)
    assert failed.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_info(failed.value).reason == "MISSING_TOKEN"
    channel.close()


def _shard_call(address: str, key: Key, metadata) -> None:
    context = shard_pb2.Context(database_id=database_id(key.account, "app", "x"), account=key.account, name="app", tenant="x")
    request = shard_pb2.ShardExecuteRequest(context=context, request=pb.ExecuteRequest(statement=pb.Statement(sql="SELECT 1")))
    with grpc.insecure_channel(address) as channel:
        shard_pb2_grpc.ShardStub(channel).Execute(request, metadata=metadata, timeout=10)


@pytest.mark.parametrize("metadata", [(), ((SECRET_HEADER, "wrong-secret-of-the-right-length"),)])
def test_shard_refuses_calls_without_the_cluster_secret(cluster, key: Key, metadata) -> None:
    with pytest.raises(grpc.RpcError) as failed:
        _shard_call(cluster.shards["shard-0"].address, key, metadata)
    assert failed.value.code() == grpc.StatusCode.UNAUTHENTICATED


def _every_shard_method() -> list[tuple[str, bool, bool]]:
    """(full name, client streams, server streams) of every method a shard serves but health."""
    services = [*(shard_pb2.DESCRIPTOR.services_by_name[name] for name in ("Shard", "Handoff", "Backups")),
                reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"]]
    return [(f"/{service.full_name}/{method.name}", method.client_streaming, method.server_streaming)
            for service in services for method in service.methods]


def _raw_call(channel: grpc.Channel, method: str, client_streams: bool, server_streams: bool, metadata):
    """`method` called with empty messages, whatever its kind; the answer read whole."""
    kind = f"{'stream' if client_streams else 'unary'}_{'stream' if server_streams else 'unary'}"
    answer = getattr(channel, kind)(method)(iter([b""]) if client_streams else b"", metadata=metadata, timeout=10)
    return list(answer) if server_streams else answer


@pytest.mark.parametrize("metadata", [(), ((SECRET_HEADER, "wrong-secret-of-the-right-length"),)])
def test_every_shard_method_but_health_refuses_calls_without_the_secret(cluster, metadata) -> None:
    methods = _every_shard_method()
    assert len(methods) == 15  # a new method shows up here, and must be refused too
    with grpc.insecure_channel(cluster.shards["shard-0"].address) as channel:
        for method, client_streams, server_streams in methods:
            refused(lambda: _raw_call(channel, method, client_streams, server_streams, metadata),
                    grpc.StatusCode.UNAUTHENTICATED, "CLUSTER_SECRET")
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), metadata=metadata, timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING


def test_shard_refuses_a_database_it_does_not_own(cluster, key: Key) -> None:
    secret = ((SECRET_HEADER, cluster.env["LOOT_CLUSTER_SECRET"]),)
    outcomes = {}
    for name, shard in cluster.shards.items():
        try:
            _shard_call(shard.address, key, secret)
            outcomes[name] = "served"
        except grpc.RpcError as error:
            outcomes[name] = error.code()
    assert sorted(outcomes.values(), key=str) == sorted(["served", grpc.StatusCode.FAILED_PRECONDITION], key=str)


@pytest.mark.parametrize("role, service", [("router", "loot.v1.Database"), ("shard-0", "loot.internal.v1.Shard")])
def test_health_and_reflection(cluster, role: str, service: str) -> None:
    child = cluster.router if role == "router" else cluster.shards[role]
    # Health needs no secret (orchestrators probe shards); reflection on a shard does, like every other call.
    secret = ((SECRET_HEADER, cluster.env["LOOT_CLUSTER_SECRET"]),)
    with grpc.insecure_channel(child.address) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        replies = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10, metadata=secret)
        services = {s.name for reply in replies for s in reply.list_services_response.service}
        assert {service, "grpc.health.v1.Health"} <= services


def test_killed_shard_gives_unavailable_quickly_and_others_keep_working(own_cluster, key: Key) -> None:
    ring = Ring(own_cluster.names)
    by_shard: dict[str, str] = {}
    for i in range(50):
        tenant = f"t{i}"
        by_shard.setdefault(ring.owner(database_id(key.account, "app", tenant)), tenant)
    assert set(by_shard) == set(own_cluster.names)
    with Client(own_cluster.address) as client:
        tokens = {name: mint(key, "app", tenant, schema=NOTES) for name, tenant in by_shard.items()}
        for token in tokens.values():
            client.execute(token, "INSERT INTO notes (body) VALUES ('before')")
        own_cluster.shards["shard-0"].signal(signal.SIGKILL)
        own_cluster.shards["shard-0"].wait(10)

        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as failed:
            client.execute(tokens["shard-0"], "SELECT * FROM notes", timeout=60)
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
        assert error_info(failed.value).reason == "SHARD_UNAVAILABLE"
        assert time.monotonic() - started < 5
        assert rows(client.execute(tokens["shard-1"], "SELECT body FROM notes").result) == [("before",)]

        own_cluster.restart_shard("shard-0")
        deadline = time.monotonic() + 15
        while True:
            try:
                assert rows(client.execute(tokens["shard-0"], "SELECT body FROM notes").result) == [("before",)]
                break
            except grpc.RpcError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
