"""Channels from this shard to the other shards' Handoff service, by name."""

from __future__ import annotations

import grpc

from loot.internal.v1 import shard_pb2, shard_pb2_grpc
from loot.secret import SECRET_HEADER
from loot.grpc_options import GRPC_OPTIONS
from loot.tls import shard_channel

CALL_TIMEOUT = 30.0  # seconds a peer may take to answer a listing or a confirmation
COPY_TIMEOUT = 600.0  # seconds for a whole copy (databases are bounded by --database-bytes)


class PeerUnknown(Exception):
    """No address for that shard (yet): the membership file has not given one."""


class Peers:
    def __init__(self, secret: str, credentials: grpc.ChannelCredentials | None = None):
        self._metadata = ((SECRET_HEADER, secret),)
        self._credentials = credentials
        self._addresses: dict[str, str] = {}
        self._stubs: dict[str, shard_pb2_grpc.HandoffStub] = {}  # address -> stub
        self._channels: list[grpc.aio.Channel] = []

    def learn(self, addresses: dict[str, str]) -> None:
        self._addresses.update({name: address for name, address in addresses.items() if address})

    def _stub(self, name: str) -> shard_pb2_grpc.HandoffStub:
        address = self._addresses.get(name)
        if not address:
            raise PeerUnknown(name)
        if address not in self._stubs:
            channel = shard_channel(address, self._credentials, GRPC_OPTIONS)
            self._channels.append(channel)
            self._stubs[address] = shard_pb2_grpc.HandoffStub(channel)
        return self._stubs[address]

    async def owned(self, peer: str, owner: str, epoch: int) -> list[str]:
        request = shard_pb2.OwnedRequest(owner=owner, epoch=epoch)
        response = await self._stub(peer).Owned(request, metadata=self._metadata, timeout=CALL_TIMEOUT)
        return list(response.database_ids)

    def copy(self, peer: str, request: shard_pb2.HandoffRequest):
        """The stream of chunks; iterate it with `async for`."""
        return self._stub(peer).Copy(request, metadata=self._metadata, timeout=COPY_TIMEOUT)

    async def confirm(self, peer: str, request: shard_pb2.HandoffRequest) -> None:
        await self._stub(peer).Confirm(request, metadata=self._metadata, timeout=CALL_TIMEOUT)

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close()
