"""The router forwards bytes: the shard request it assembles is exactly the one protobuf would
serialize, the client's bytes cannot reach the Context, and garbage gets a clear status."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.internal.encoder import _VarintBytes
from hypothesis import given
from hypothesis import strategies as st

from tests.client import statement
from loot.internal.v1 import shard_pb2
from loot.cli.local_cluster import LocalCluster
from loot.grpc_options import GRPC_OPTIONS
from loot.serving import SERVER_OPTIONS
from loot.status import error_info
from loot.tokens import Key, mint
from loot.v1 import database_pb2 as pb
from loot.router.envelope import context_field, shard_request, varint
from loot.router.shards import CHANNEL_OPTIONS

CONTEXT = shard_pb2.Context(database_id="ab" * 32, account="acct", name="app", tenant="t", readonly=True,
                            claims_json='{"sub":"acct"}')
SHARD_REQUESTS = {"Execute": (shard_pb2.ShardExecuteRequest, pb.ExecuteRequest),
                  "Batch": (shard_pb2.ShardBatchRequest, pb.BatchRequest),
                  "Describe": (shard_pb2.ShardDescribeRequest, pb.DescribeRequest)}
EXECUTE = "/loot.v1.Database/Execute"


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_varint_is_protobufs(value: int) -> None:
    assert varint(value) == _VarintBytes(value)


@given(sql=st.text(max_size=40_000), params=st.lists(st.integers(min_value=-2**63, max_value=2**63 - 1), max_size=5))
def test_an_assembled_execute_request_is_the_serialized_one(sql: str, params: list[int]) -> None:
    request = pb.ExecuteRequest(statement=statement(sql, params))
    wire = shard_request(context_field(CONTEXT.SerializeToString()), request.SerializeToString())
    parsed = shard_pb2.ShardExecuteRequest.FromString(wire)
    assert parsed == shard_pb2.ShardExecuteRequest(context=CONTEXT, request=request)


@pytest.mark.parametrize("method", SHARD_REQUESTS)
def test_every_method_assembles_an_empty_request(method: str) -> None:
    shard_type, public_type = SHARD_REQUESTS[method]
    parsed = shard_type.FromString(shard_request(context_field(CONTEXT.SerializeToString()), b""))
    assert parsed.context == CONTEXT and parsed.request == public_type()


def test_the_clients_bytes_cannot_reach_the_context() -> None:
    # A forged shard request that is also a valid ExecuteRequest (Context.database_id and
    # Statement.sql are both field 1 strings): it stays the request's SQL text.
    forged = shard_pb2.ShardExecuteRequest(context=shard_pb2.Context(database_id="f" * 64))
    parsed = shard_pb2.ShardExecuteRequest.FromString(
        shard_request(context_field(CONTEXT.SerializeToString()), forged.SerializeToString()))
    assert parsed.context == CONTEXT and parsed.request.statement.sql == "f" * 64


def raw_execute(cluster: LocalCluster, request: bytes, token: str) -> bytes:
    with grpc.insecure_channel(cluster.address, options=GRPC_OPTIONS) as channel:
        call = channel.unary_unary(EXECUTE)
        return call(request, metadata=(("authorization", f"Bearer {token}"),), timeout=20)


def test_a_request_passes_through_unparsed_and_answers_the_same(cluster: LocalCluster, key: Key) -> None:
    token = mint(key, "forwarding", "bytes")
    request = pb.ExecuteRequest(statement=statement("SELECT ? + 1, 'x'", [41]))
    response = pb.ExecuteResponse.FromString(raw_execute(cluster, request.SerializeToString(), token))
    assert [[v.integer or v.text for v in row.values] for row in response.result.rows] == [[42, "x"]]


def test_garbage_request_bytes_are_invalid_argument_and_the_router_keeps_serving(cluster: LocalCluster,
                                                                                 key: Key) -> None:
    token = mint(key, "forwarding", "garbage")
    with pytest.raises(grpc.RpcError) as refused:
        raw_execute(cluster, b"\x0a\xff\xff\xff\xff\x0f", token)  # field 1 claims 4 GiB
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(refused.value).reason == "MALFORMED_REQUEST"
    assert "loot.v1.ExecuteRequest" in refused.value.details()
    assert raw_execute(cluster, pb.ExecuteRequest(statement=statement("SELECT 1")).SerializeToString(), token)


def test_shards_accept_the_pings_routers_send_on_idle_streams() -> None:
    """Forward streams stay open while idle and the router keeps pinging them. A shard that allowed
    pings less often than the router sends them would close the connection (GOAWAY too_many_pings)
    after a few idle minutes, breaking the calls then on it."""
    router = dict(CHANNEL_OPTIONS)
    shard = dict(SERVER_OPTIONS)
    assert router["grpc.http2.max_pings_without_data"] == 0, "the router pings idle connections too"
    assert shard["grpc.http2.min_ping_interval_without_data_ms"] <= router["grpc.keepalive_time_ms"]
