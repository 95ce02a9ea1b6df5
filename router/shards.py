"""The router's view of the shards: the ring and one channel per shard."""

from __future__ import annotations

import json

import grpc

from loot.internal.v1 import shard_pb2_grpc
from loot.observability.request_id import PropagateRequestId
from loot.ring import Ring
from loot.serving import GRPC_OPTIONS

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
    def __init__(self, members: dict[str, str]):
        missing = [name for name, address in members.items() if not address]
        if missing:
            raise ValueError(f"the router needs an address for every shard; missing: {', '.join(missing)}")
        self.ring = Ring(members)
        self.addresses = dict(members)
        self._channels = {
            name: grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS, interceptors=[PropagateRequestId()])
            for name, address in members.items()
        }
        self._stubs = {name: shard_pb2_grpc.ShardStub(channel) for name, channel in self._channels.items()}

    def for_database(self, database_id: str) -> tuple[str, shard_pb2_grpc.ShardStub]:
        name = self.ring.owner(database_id)
        return name, self._stubs[name]

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
