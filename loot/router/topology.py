"""The answer to Topology: the membership as clients that route directly need it (docs/clients.md)."""

from __future__ import annotations

from loot import ring
from loot.membership import Membership
from loot.v1 import database_pb2 as pb


class Topology:
    """The serialized TopologyResponse of the current membership, built once per membership."""

    def __init__(self) -> None:
        self._membership: Membership | None = None
        self._answer = b""

    def answer(self, membership: Membership) -> bytes:
        if membership is not self._membership:
            self._answer = pb.TopologyResponse(
                epoch=membership.epoch,
                shards=[pb.TopologyShard(name=name, address=membership.public.get(name, ""))
                        for name in membership.ring.names],
                ring_hash=ring.HASH, points=ring.POINTS,
            ).SerializeToString()
            self._membership = membership
        return self._answer
