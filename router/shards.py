"""The router's view of the shards: the ring and one channel per shard."""

from __future__ import annotations

import asyncio
import functools
import json

import grpc

from loot.membership import EPOCH_HEADER, Membership, MembershipSource
from loot.serving import GRPC_OPTIONS
from loot.tls import shard_channel

SERVICE = "loot.internal.v1.Shard"
METHODS = ("Execute", "Batch", "Describe")
# A shard method taking and returning serialized messages (the router forwards bytes).
Call = grpc.aio.UnaryUnaryMultiCallable

# UNAVAILABLE means the shard never ran the request (unreachable, or refusing
# new calls while it shuts down), so gRPC may retry it (SPEC §8); anything else
# may have been applied and is never retried.
RETRY_UNAVAILABLE = {
    "methodConfig": [{
        "name": [{"service": "loot.internal.v1.Shard"}],
        "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.05s", "maxBackoff": "0.5s",
                        "backoffMultiplier": 3, "retryableStatusCodes": ["UNAVAILABLE"]},
    }]
}
# Fail fast while a shard is down and find it again soon after it returns.
CHANNEL_OPTIONS = GRPC_OPTIONS + [
    ("grpc.enable_retries", 1),
    ("grpc.service_config", json.dumps(RETRY_UNAVAILABLE)),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
]


class Shards:
    """Follows the membership source: a new epoch swaps the ring and opens channels to new
    addresses; channels no longer named are closed after a grace period for calls in flight."""

    def __init__(self, source: MembershipSource, credentials: grpc.ChannelCredentials | None = None,
                 grace_seconds: float = 60.0):
        self.source = source
        self._credentials = credentials
        self._grace = grace_seconds
        self._calls: dict[str, dict[str, Call]] = {}  # address -> method -> call
        self._channels: dict[str, grpc.aio.Channel] = {}  # address -> channel
        self._follow(source.current)
        source.on_change(self._follow)

    @property
    def epoch(self) -> int:
        return self.source.current.epoch

    def for_database(self, database_id: str) -> tuple[str, dict[str, Call], int]:
        """The owning shard's name, its calls by method, and the epoch of the membership that said so."""
        membership = self.source.current
        name = membership.ring.owner(database_id)
        return name, self._calls[membership.shards[name]], membership.epoch

    def _follow(self, membership: Membership) -> None:
        missing = [name for name, address in membership.shards.items() if not address]
        if missing:
            raise ValueError(f"the router needs an address for every shard; missing: {', '.join(missing)}")
        for address in set(membership.shards.values()) - set(self._channels):
            # No client interceptors: grpc.aio runs an intercepted call as an extra task; the
            # router passes the request id in the call's metadata itself.
            self._channels[address] = shard_channel(address, self._credentials, CHANNEL_OPTIONS)
            self._calls[address] = _calls(self._channels[address])
        for address in set(self._channels) - set(membership.shards.values()):
            self._calls.pop(address)
            self._close_later(self._channels.pop(address))

    def _close_later(self, channel: grpc.aio.Channel) -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(self._grace, lambda: loop.create_task(channel.close()))

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()


@functools.lru_cache(maxsize=8)
def epoch_entry(epoch: int) -> tuple[str, str]:
    """The metadata entry telling a shard which epoch a call was routed under (one per epoch)."""
    return EPOCH_HEADER, str(epoch)


def _calls(channel: grpc.aio.Channel) -> dict[str, Call]:
    """No serializers: requests and responses stay bytes end to end."""
    return {method: channel.unary_unary(f"/{SERVICE}/{method}", _registered_method=True) for method in METHODS}


