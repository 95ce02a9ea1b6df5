"""Direct routing: each call goes straight to its database's shard (docs/clients.md, "Routing directly").

The client learns the topology (the membership epoch, each shard's name and public address, the ring) from
its configured address, a router or any shard, and places a database on the ring exactly as routers do
(loot/ring.py), from the database id its token names (loot/ids.py; the claims are read, not verified: the
shard verifies them). It keeps one channel per shard it has talked to. A call goes to the configured address
instead while the topology is unknown, the owner has no public address, or the ring is one this SDK does not
know, and while the owner's channel is not connected (it connects in the background: a shard that is down,
or an address this client cannot resolve or reach, costs no call a wait); and once more to it, with the
topology refreshed at the next call, when the direct call certainly ran
nothing: the shard was unreachable (the connection failed) or refused it as not its own (`WRONG_SHARD`) or
as unavailable; a transaction's `begin` alike, and also after a connection that broke before `begin` was
answered (loot/sdk/transaction.py). A shard that is still there but no
longer the owner forwards the call itself and says so
(`loot-epoch` metadata: trailing for a unary call, initial for a transaction): the topology is refreshed at
the next call, as it is every `REFRESH_EVERY` seconds.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable
from typing import Any

import grpc

from loot import ring
from loot.grpc_options import GRPC_OPTIONS
from loot.ids import database_id
from loot.membership import EPOCH_HEADER
from loot.status import error_info
from loot.tokens.base64url import b64url_decode
from loot.v1 import database_pb2 as pb
from loot.v1 import database_pb2_grpc

REFRESH_EVERY = 10.0  # seconds between topology refreshes while calls succeed
ENVIRONMENT = "LOOT_DIRECT"  # "0", "false" or "off": route every call through the configured address
# Find a restarted shard again within a second; fail fast while it is down (the call falls back).
CHANNEL_OPTIONS = GRPC_OPTIONS + [("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
                                  ("grpc.max_reconnect_backoff_ms", 1000)]
_NOT_RUN = ("SHARD_UNAVAILABLE", "WRONG_SHARD")  # a shard's refusals that promise nothing was applied
# A stream's connection that failed, no server's status: grpc.aio reports a write on it as INTERNAL.
_BROKEN = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL)


def direct_by_default() -> bool:
    return os.environ.get(ENVIRONMENT, "").strip().lower() not in ("0", "false", "off", "no")


@functools.lru_cache(maxsize=1024)
def database_of(token: str) -> str | None:
    """The database id a token names (None for an account token or one that is not a JWT)."""
    try:
        payload = json.loads(b64url_decode(token.split(".")[1]))
        return database_id(payload["sub"], payload["db"]["name"], payload["db"]["tenant"])
    except (IndexError, KeyError, TypeError, ValueError, AttributeError):
        return None


def ran_nothing(error: grpc.RpcError) -> bool:
    """Whether a direct call that failed with `error` certainly applied nothing, so it may be sent elsewhere."""
    if error.code() != grpc.StatusCode.UNAVAILABLE and error.code() != grpc.StatusCode.FAILED_PRECONDITION:
        return False
    info = error_info(error)
    if info is not None:
        return info.domain == "loot" and info.reason in _NOT_RUN
    # No status from a shard: only a connection that never opened says the call was not sent.
    return error.code() == grpc.StatusCode.UNAVAILABLE and "failed to connect" in (error.details() or "")


def began_nothing(error: grpc.RpcError) -> bool:
    """Whether a transaction's `begin` that failed with `error`, unanswered, left nothing behind, so it may be
    sent elsewhere: as a call that ran nothing, and also after any connection failure without a server's
    status (a connection reset as the begin left): a begin alone commits nothing, and a shard rolls back a
    transaction whose stream broke."""
    return ran_nothing(error) or (error.code() in _BROKEN and error_info(error) is None)


def connected_aio(channel: grpc.aio.Channel) -> bool:
    """Whether an asyncio channel is READY, asking it to connect if it is idle."""
    return channel.get_state(try_to_connect=True) == grpc.ChannelConnectivity.READY


class ConnectedSync:
    """Whether each synchronous channel is READY: grpc's sync API tells only by subscription."""

    def __init__(self) -> None:
        self._states: dict[int, grpc.ChannelConnectivity] = {}

    def watch(self, channel: grpc.Channel) -> grpc.Channel:
        """Start watching `channel` (and connecting it); returns it."""
        channel.subscribe(lambda state: self._states.__setitem__(id(channel), state), try_to_connect=True)
        return channel

    def __call__(self, channel: grpc.Channel) -> bool:
        return self._states.get(id(channel)) == grpc.ChannelConnectivity.READY


class Routes:
    """What the client knows of the shards, and a stub per shard it has talked to."""

    def __init__(self, open_channel: Callable[[str], Any], connected: Callable[[Any], bool] = lambda channel: True,
                 clock: Callable[[], float] = time.monotonic):
        self._open = open_channel
        self._connected = connected
        self._clock = clock
        self.epoch = -1
        self._ring: ring.Ring | None = None
        self._addresses: dict[str, str] = {}
        self._stubs: dict[str, database_pb2_grpc.DatabaseStub] = {}
        self.channels: dict[str, Any] = {}  # address -> channel
        self._refresh_at = 0.0

    def due(self) -> bool:
        """Whether to ask for the topology before the next call."""
        return self._clock() >= self._refresh_at

    def learn(self, answer: pb.TopologyResponse | None) -> None:
        """Take a Topology answer (None: it could not be had; try again later). An older epoch is ignored."""
        self._refresh_at = self._clock() + REFRESH_EVERY
        if answer is None or answer.epoch < self.epoch:
            return
        self.epoch = answer.epoch
        known = answer.ring_hash == ring.HASH and answer.points == ring.POINTS and answer.shards
        self._ring = ring.Ring(shard.name for shard in answer.shards) if known else None
        self._addresses = {shard.name: shard.address for shard in answer.shards if shard.address}

    def stub(self, token: str) -> database_pb2_grpc.DatabaseStub | None:
        """The stub of the shard that owns the token's database, or None: use the configured address."""
        database = database_of(token)
        if self._ring is None or database is None:
            return None
        address = self._addresses.get(self._ring.owner(database))
        if address is None:
            return None
        stub = self._stubs.get(address)
        if stub is None:
            self.channels[address] = self._open(address)
            stub = self._stubs[address] = database_pb2_grpc.DatabaseStub(self.channels[address])
        return stub if self._connected(self.channels[address]) else None

    def forwarded(self, metadata) -> None:
        """After a direct call (its trailing metadata) or a transaction's `begin` (the initial metadata): a
        shard that forwarded it names a newer epoch than ours."""
        for key, value in metadata or ():
            if key == EPOCH_HEADER and value.isdigit() and int(value) > self.epoch:
                self.missed()

    def missed(self) -> None:
        """A direct call was refused or could not be sent: refresh the topology at the next call."""
        self._refresh_at = 0.0
