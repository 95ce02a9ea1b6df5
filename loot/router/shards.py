"""The router's view of the shards: the ring, and one channel per shard carrying a few Forward streams."""

from __future__ import annotations

import asyncio

import grpc

from loot.status import Fault
from loot.membership import Membership, MembershipSource
from loot.grpc_options import GRPC_OPTIONS
from loot.tls import shard_channel
from loot.router.forward_client import ShardStreams

# Streams per shard: enough that one large answer in transfer does not hold up the others
# (docs/performance.md has the measurements behind the number).
STREAMS_PER_SHARD = 2
# Fail fast while a shard is down and find it again soon after it returns. No retry policy:
# a stream that breaks may have run the calls written on it (loot/router/forward_client.py).
CHANNEL_OPTIONS = GRPC_OPTIONS + [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.http2.max_pings_without_data", 0),  # keep pinging idle streams (shards allow it: loot.serving)
]


class Shards:
    """Follows the membership source: a new epoch swaps the ring and opens channels to new
    addresses; channels no longer named are closed after a grace period for calls in flight."""

    def __init__(self, source: MembershipSource, secret: tuple[str, str],
                 credentials: grpc.ChannelCredentials | None = None, grace_seconds: float = 60.0,
                 streams_per_shard: int = STREAMS_PER_SHARD, require_addresses: bool = True):
        self.source = source
        self._require_addresses = require_addresses  # else a shard without one is unavailable until it has one
        self._secret = secret
        self._credentials = credentials
        self._grace = grace_seconds
        self._width = streams_per_shard
        self._streams: dict[str, ShardStreams] = {}  # address -> its streams
        self._channels: dict[str, grpc.aio.Channel] = {}  # address -> channel
        self._follow(source.current)
        source.on_change(self._follow)

    @property
    def epoch(self) -> int:
        return self.source.current.epoch

    def for_database(self, database_id: str) -> tuple[str, ShardStreams | None, int]:
        """The owning shard's name, its streams (None while its address is not known) and the epoch of the
        membership that said so."""
        membership = self.source.current
        name = membership.ring.owner(database_id)
        return name, self._streams.get(membership.shards[name]), membership.epoch

    def channel_for(self, database_id: str) -> tuple[str, grpc.aio.Channel, int]:
        """The owning shard's name, its channel (for a stream of a call's own) and the membership's epoch."""
        membership = self.source.current
        name = membership.ring.owner(database_id)
        address = membership.shards[name]
        if not address:
            raise Fault(grpc.StatusCode.UNAVAILABLE, "SHARD_UNAVAILABLE",
                        f"no address is known for shard {name} yet; retry later", shard=name)
        return name, self._channels[address], membership.epoch

    def every_shard(self) -> list[tuple[str, grpc.aio.Channel]]:
        """Each shard's name and channel under the current membership (the account methods ask them all)."""
        membership = self.source.current
        return [(name, self._channels[address]) for name, address in sorted(membership.shards.items())]

    @property
    def secret(self) -> tuple[str, str]:
        """The cluster secret's metadata entry, for calls outside the Forward streams."""
        return self._secret

    def _follow(self, membership: Membership) -> None:
        missing = [name for name, address in membership.shards.items() if not address]
        if missing and self._require_addresses:
            raise ValueError(f"the router needs an address for every shard; missing: {', '.join(missing)}")
        for address in set(membership.shards.values()) - set(self._channels) - {""}:
            # No client interceptors: grpc.aio runs an intercepted call as an extra task; each
            # Forwarded message carries its call's request id.
            self._channels[address] = shard_channel(address, self._credentials, CHANNEL_OPTIONS)
            self._streams[address] = ShardStreams(self._channels[address], self._secret, self._width)
        for address in set(self._channels) - set(membership.shards.values()):
            self._streams.pop(address)
            self._close_later(self._channels.pop(address))

    def _close_later(self, channel: grpc.aio.Channel) -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(self._grace, lambda: loop.create_task(channel.close()))

    async def close(self) -> None:
        for streams in self._streams.values():
            streams.close()
        for channel in self._channels.values():
            await channel.close()

