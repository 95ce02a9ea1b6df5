"""The Forward stream (router -> shard): calls multiplexed by id, answered as they finish, with the
unary methods' statuses; a stream that breaks fails its calls, and the router opens new streams."""

from __future__ import annotations

import queue
import signal
import threading
import time
from collections.abc import Iterator

import grpc
import pytest
from google.rpc import status_pb2

from tests.client import Client, rows
from loot.errors import OutcomeUnknown, from_rpc_error
from loot.ids import database_id
from loot.internal.v1 import shard_pb2
from loot.cli.local_cluster import LocalCluster
from loot.ring import Ring
from loot.secret import SECRET_HEADER
from loot.status import error_info, status_info
from loot.tokens import Key, mint
from loot.v1 import database_pb2 as pb
from tests.conftest import refused, start_cluster

pytestmark = pytest.mark.cluster  # its own clusters, started in test bodies too

FORWARD = "/loot.internal.v1.Shard/Forward"
SLOW_COUNT = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) "
              "SELECT count(*) FROM c")
SLOWER_COUNT = SLOW_COUNT.replace("3000000", "12000000")  # seconds: long enough to send more calls during it
EXECUTE = shard_pb2.FORWARDED_METHOD_EXECUTE


def tenants_on(cluster: LocalCluster, key: Key, shard: str, count: int) -> list[str]:
    ring = Ring(cluster.names)
    tenants = (f"t{i}" for i in range(1000))
    return [t for t in tenants if ring.owner(database_id(key.account, "fwd", t)) == shard][:count]


def execute_call(key: Key, tenant: str, call: int, sql: str, seconds_left: float = 60.0,
                 instead: str = "") -> shard_pb2.Forwarded:
    context = shard_pb2.Context(database_id=database_id(key.account, "fwd", tenant), account=key.account,
                                name="fwd", tenant=tenant, instead=instead)
    request = shard_pb2.ShardExecuteRequest(context=context, request=pb.ExecuteRequest(statement=pb.Statement(sql=sql)))
    return shard_pb2.Forwarded(call=call, method=EXECUTE, request=request.SerializeToString(),
                               seconds_left=seconds_left, request_id=f"fwd-{call}")


class Stream:
    """A Forward stream opened by hand: send calls when you like, read answers as they come."""

    def __init__(self, address: str, secret: str):
        self._channel = grpc.insecure_channel(address)
        self._outbox: queue.Queue[shard_pb2.Forwarded | None] = queue.Queue()
        forward = self._channel.stream_stream(FORWARD, request_serializer=shard_pb2.Forwarded.SerializeToString,
                                              response_deserializer=shard_pb2.Answered.FromString)
        self.answers = forward(self._requests(), metadata=((SECRET_HEADER, secret),), timeout=90)

    def _requests(self) -> Iterator[shard_pb2.Forwarded]:
        while (forwarded := self._outbox.get()) is not None:
            yield forwarded

    def send(self, forwarded: shard_pb2.Forwarded) -> None:
        self._outbox.put(forwarded)

    def close_sending(self) -> None:
        self._outbox.put(None)

    def close(self) -> None:
        self.answers.cancel()
        self._channel.close()


@pytest.fixture
def stream(cluster: LocalCluster) -> Iterator[Stream]:
    opened = Stream(cluster.shards["shard-0"].address, cluster.env["LOOT_CLUSTER_SECRET"])
    yield opened
    opened.close()


def error_of(answered: shard_pb2.Answered) -> status_pb2.Status:
    assert answered.WhichOneof("outcome") == "error", answered
    return status_pb2.Status.FromString(answered.error)


def value_of(answered: shard_pb2.Answered) -> list[tuple]:
    assert answered.WhichOneof("outcome") == "response", error_of(answered)
    return rows(pb.ExecuteResponse.FromString(answered.response).result)


def test_calls_run_concurrently_and_are_answered_by_id_as_they_finish(cluster: LocalCluster, key: Key,
                                                                      stream: Stream) -> None:
    slow, fast = tenants_on(cluster, key, "shard-0", 2)  # two databases: neither waits for the other's turn
    stream.send(execute_call(key, slow, 7, SLOW_COUNT))
    time.sleep(0.2)  # the slow call is running
    stream.send(execute_call(key, fast, 3, "SELECT 'fast'"))
    stream.close_sending()
    answers = list(stream.answers)
    assert [answered.call for answered in answers] == [3, 7, 0], "the fast call did not wait for the slow one"
    assert answers[-1].WhichOneof("outcome") is None, "the stream ends with its last message, call id 0"
    assert value_of(answers[0]) == [("fast",)] and value_of(answers[1]) == [(3000000,)]


def test_each_call_fails_alone_with_the_unary_methods_status(cluster: LocalCluster, key: Key, stream: Stream) -> None:
    ours, theirs = tenants_on(cluster, key, "shard-0", 1)[0], tenants_on(cluster, key, "shard-1", 1)[0]
    malformed = execute_call(key, ours, 2, "SELECT 1")
    malformed.request += b"\x12\xff\xff\xff\xff\x0f"  # field 2 claims 4 GiB
    for forwarded in (execute_call(key, ours, 1, "SELEC 1"), malformed,
                      shard_pb2.Forwarded(call=3, method=99, request=b""),
                      execute_call(key, theirs, 4, "SELECT 1"),
                      execute_call(key, ours, 5, SLOW_COUNT, seconds_left=0.3),
                      execute_call(key, ours, 6, "SELECT 6")):
        stream.send(forwarded)
    stream.close_sending()
    answers = {answered.call: answered for answered in stream.answers}
    expected = {1: (grpc.StatusCode.INVALID_ARGUMENT, "SQL_ERROR"), 2: (grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED_REQUEST"),
                3: (grpc.StatusCode.INVALID_ARGUMENT, "UNKNOWN_METHOD"), 4: (grpc.StatusCode.FAILED_PRECONDITION, "WRONG_SHARD"),
                5: (grpc.StatusCode.DEADLINE_EXCEEDED, None)}
    for call, (code, reason) in expected.items():
        status = error_of(answers[call])
        info = status_info(status)
        assert status.code == code.value[0] and info.domain == "loot", (call, status)
        assert reason is None or info.reason == reason, (call, status)
    assert "loot.v1.ExecuteRequest" in error_of(answers[2]).message
    assert value_of(answers[6]) == [(6,)], "the stream serves on after its calls failed"


def test_garbage_on_the_stream_ends_it_and_the_shard_serves_on(cluster: LocalCluster, key: Key) -> None:
    secret = ((SECRET_HEADER, cluster.env["LOOT_CLUSTER_SECRET"]),)
    with grpc.insecure_channel(cluster.shards["shard-0"].address) as channel:
        garbage = iter([b"\x0a\xff\xff\xff\xff\x0f"])  # field 1 claims 4 GiB
        refused(lambda: list(channel.stream_stream(FORWARD)(garbage, metadata=secret, timeout=10)),
                grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED_REQUEST")
    with Client(cluster.address) as client:
        token = mint(key, "fwd", tenants_on(cluster, key, "shard-0", 1)[0])
        assert rows(client.execute(token, "SELECT 1").result) == [(1,)]


def test_a_forward_stream_without_the_secret_is_refused_before_any_call_runs(cluster: LocalCluster, key: Key,
                                                                           stream: Stream) -> None:
    tenant = tenants_on(cluster, key, "shard-0", 1)[0]
    with grpc.insecure_channel(cluster.shards["shard-0"].address) as channel:
        forward = channel.stream_stream(FORWARD, request_serializer=shard_pb2.Forwarded.SerializeToString,
                                        response_deserializer=shard_pb2.Answered.FromString)
        planting = execute_call(key, tenant, 1, "SELECT 1", instead="CREATE TABLE planted (x)")
        refused(lambda: list(forward(iter([planting]), timeout=10)), grpc.StatusCode.UNAUTHENTICATED, "CLUSTER_SECRET")
    stream.send(execute_call(key, tenant, 2, "SELECT 1",
                             instead="SELECT count(*) FROM sqlite_master WHERE name = 'planted'"))
    stream.close_sending()
    assert value_of(next(stream.answers)) == [(0,)]


def test_a_stream_broken_mid_call_fails_the_call_and_the_router_reopens_after_a_restart(own_cluster: LocalCluster,
                                                                                        key: Key) -> None:
    tenant = tenants_on(own_cluster, key, "shard-0", 1)[0]
    token = mint(key, "fwd", tenant)
    with Client(own_cluster.address) as client:
        assert rows(client.execute(token, "SELECT 1").result) == [(1,)]  # the router's streams are open
        outcome: dict = {}

        def slow_call() -> None:
            try:
                client.execute(token, SLOW_COUNT, timeout=60)
            except grpc.RpcError as error:
                outcome["error"] = error

        calling = threading.Thread(target=slow_call)
        calling.start()
        time.sleep(0.3)  # running on the shard
        own_cluster.shards["shard-0"].signal(signal.SIGKILL)
        calling.join(10)
        assert not calling.is_alive(), "the router fails the call when its stream breaks, not at the deadline"
        error = outcome["error"]
        # It was running: not UNAVAILABLE, which tells the client nothing was applied (docs/errors.md).
        assert error.code() == grpc.StatusCode.UNKNOWN and error_info(error).reason == "OUTCOME_UNKNOWN"
        assert error_info(error).metadata["shard"] == "shard-0"
        assert isinstance(from_rpc_error(error), OutcomeUnknown)

        own_cluster.shards["shard-0"].wait(10)
        own_cluster.restart_shard("shard-0")
        assert rows(client.execute(token, "SELECT 2", timeout=10).result) == [(2,)], "new streams to the new process"


def test_a_stopping_shard_finishes_running_calls_refuses_new_ones_and_ends_the_stream(tmp_path, key: Key) -> None:
    cluster = start_cluster(tmp_path / "cluster", env={"LOOT_SHUTDOWN_GRACE": "60", "LOOT_STATEMENT_SECONDS": "60"})
    stream = Stream(cluster.shards["shard-0"].address, cluster.env["LOOT_CLUSTER_SECRET"])
    try:
        running, later = tenants_on(cluster, key, "shard-0", 2)
        stream.send(execute_call(key, running, 1, SLOWER_COUNT))
        time.sleep(0.3)
        cluster.shards["shard-0"].signal(signal.SIGTERM)
        time.sleep(0.3)
        stream.send(execute_call(key, later, 2, "CREATE TABLE too_late (x)"))
        answers = {answered.call: answered for answered in stream.answers}  # the shard ends the stream
        assert value_of(answers[1]) == [(12000000,)], "the running call finished"
        assert status_info(error_of(answers[2])).reason == "SHARD_UNAVAILABLE"
        assert error_of(answers[2]).code == grpc.StatusCode.UNAVAILABLE.value[0]
        cluster.shards["shard-0"].process.wait(30)
        assert cluster.shards["shard-0"].process.returncode == 0
    finally:
        stream.close()
        cluster.stop()
