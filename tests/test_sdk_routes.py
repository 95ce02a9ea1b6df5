"""The SDK's direct routing (loot/sdk/routes.py), without processes: where a call goes, and when it may go
elsewhere after failing."""

from __future__ import annotations

import grpc
import pytest

from loot.ids import database_id
from loot.ring import Ring
from loot.sdk.routes import REFRESH_EVERY, Routes, began_nothing, database_of, direct_by_default, ran_nothing
from loot.status import rich_status
from loot.tokens import Key, mint, mint_account
from loot.v1 import database_pb2 as pb


class Failed(grpc.RpcError):
    """A failed call as grpc raises it: code, details, trailing metadata (where the rich status travels)."""

    def __init__(self, code: grpc.StatusCode, details: str, status: grpc.Status | None = None):
        self._code, self._status = code, status
        self._details = status.details if status else details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self):
        return self._status.trailing_metadata if self._status else ()


class Channel:
    """Stands in for a channel the routes open (a stub only asks it for its methods)."""

    def __init__(self, address: str):
        self.address = address

    def unary_unary(self, *args, **kwargs):
        return None

    stream_stream = unary_unary


def answer(epoch: int, **shards: str) -> pb.TopologyResponse:
    return pb.TopologyResponse(epoch=epoch, shards=[pb.TopologyShard(name=n, address=a) for n, a in shards.items()],
                               ring_hash="md5", points=160)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_database_comes_from_the_tokens_own_claims() -> None:
    key = Key.generate()
    assert database_of(mint(key, "app", "alice")) == database_id(key.account, "app", "alice")
    assert database_of(mint_account(key)) is None
    assert database_of("not a token") is None and database_of("a.b.c") is None


def test_calls_go_to_the_owner_on_the_ring_one_channel_per_shard() -> None:
    opened: list[str] = []
    routes = Routes(lambda address: opened.append(address) or Channel(address))
    key = Key.generate()
    routes.learn(answer(3, **{"shard-0": "h0:1", "shard-1": "h1:1"}))
    ring = Ring(["shard-0", "shard-1"])
    tokens = [mint(key, "app", f"t{i}") for i in range(20)]
    for token in tokens + tokens:
        assert routes.stub(token) is not None
    owners = {ring.owner(database_of(token)) for token in tokens}
    assert sorted(opened) == sorted({"shard-0": "h0:1", "shard-1": "h1:1"}[name] for name in owners)


def test_no_direct_route_without_a_known_ring_or_address() -> None:
    routes = Routes(Channel)
    token = mint(Key.generate(), "app", "t")
    assert routes.stub(token) is None  # no topology yet
    routes.learn(answer(1, **{"shard-0": ""}))
    assert routes.stub(token) is None  # the shard has no public address: through the configured one
    other = answer(2, **{"shard-0": "h:1"})
    other.points = 100
    routes.learn(other)
    assert routes.stub(token) is None  # a ring this SDK cannot reproduce
    routes.learn(answer(3, **{"shard-0": "h:1"}))
    assert routes.stub(token) is not None


def test_a_shard_whose_channel_is_not_connected_is_reached_through_the_address() -> None:
    connected: set[str] = set()
    routes = Routes(Channel, lambda channel: channel.address in connected)
    token = mint(Key.generate(), "app", "t")
    routes.learn(answer(1, **{"shard-0": "h:1"}))
    assert routes.stub(token) is None and list(routes.channels) == ["h:1"]  # opened, connecting: not waited for
    connected.add("h:1")
    assert routes.stub(token) is not None


def test_an_older_topology_is_ignored_and_refreshes_are_timed() -> None:
    clock = Clock()
    routes = Routes(Channel, clock=clock)
    token = mint(Key.generate(), "app", "t")
    assert routes.due()
    routes.learn(answer(5, **{"shard-0": "new:1"}))
    assert not routes.due()
    routes.learn(answer(4, **{"shard-0": "old:1"}))
    assert routes.epoch == 5 and routes.stub(token) is not None and list(routes.channels) == ["new:1"]
    clock.now += REFRESH_EVERY
    assert routes.due()
    routes.learn(None)  # could not be had: try again later, keep what we know
    assert not routes.due() and routes.epoch == 5
    routes.missed()
    assert routes.due()


def test_a_shard_that_forwarded_a_call_under_a_newer_epoch_asks_for_a_refresh() -> None:
    routes = Routes(Channel)
    routes.learn(answer(5, **{"shard-0": "h:1"}))
    routes.forwarded((("x-request-id", "r"), ("loot-epoch", "5")))
    assert not routes.due()  # the same epoch: our view is as new as the shard's
    routes.forwarded((("loot-epoch", "junk"),))
    assert not routes.due()
    routes.forwarded((("loot-epoch", "6"),))
    assert routes.due()


@pytest.mark.parametrize("error, call, begin", [
    (Failed(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses; last error: connection refused"), True,
     True),
    (Failed(grpc.StatusCode.UNAVAILABLE, "Socket closed"), False, True),  # a call may have run; a begin commits nothing
    (Failed(grpc.StatusCode.INTERNAL, "Internal error from Core"), False, True),  # grpc.aio: a write on a broken stream
    (Failed(grpc.StatusCode.INTERNAL, "", rich_status(grpc.StatusCode.INTERNAL, "INTERNAL", "x")), False, False),
    (Failed(grpc.StatusCode.UNAVAILABLE, "", rich_status(grpc.StatusCode.UNAVAILABLE, "SHARD_UNAVAILABLE", "x")), True,
     True),
    (Failed(grpc.StatusCode.UNAVAILABLE, "", rich_status(grpc.StatusCode.UNAVAILABLE, "DATABASE_BUSY", "x")), False,
     False),  # the owner's own answer
    (Failed(grpc.StatusCode.FAILED_PRECONDITION, "",
            rich_status(grpc.StatusCode.FAILED_PRECONDITION, "WRONG_SHARD", "x")), True, True),
    (Failed(grpc.StatusCode.FAILED_PRECONDITION, "",
            rich_status(grpc.StatusCode.FAILED_PRECONDITION, "CONSTRAINT", "x")), False, False),
    (Failed(grpc.StatusCode.UNKNOWN, "", rich_status(grpc.StatusCode.UNKNOWN, "OUTCOME_UNKNOWN", "x")), False, False),
    (Failed(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"), False, False),
])
def test_only_a_call_or_begin_that_certainly_applied_nothing_goes_elsewhere(error: Failed, call: bool,
                                                                            begin: bool) -> None:
    assert (ran_nothing(error), began_nothing(error)) == (call, begin)


@pytest.mark.parametrize("value, direct", [(None, True), ("1", True), ("0", False), ("false", False), ("off", False)])
def test_direct_routing_is_on_unless_the_environment_says_off(monkeypatch, value, direct) -> None:
    if value is None:
        monkeypatch.delenv("LOOT_DIRECT", raising=False)
    else:
        monkeypatch.setenv("LOOT_DIRECT", value)
    assert direct_by_default() is direct
