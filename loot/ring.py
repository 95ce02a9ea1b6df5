"""The consistent-hash ring: which shard owns a database id.

Built over shard *names* (never addresses), so moving a shard to a new address
moves no data. Routers, shards and clients that route directly (the SDK) build it
from the same membership list. The placement, for other languages (docs/clients.md):
each name puts POINTS points on a circle, point w of name n at md5(f"{n}-{w}") read as a
128-bit big-endian integer (names in sorted order: on a collision the later name keeps the
point); a database id goes to the first point strictly above md5(id), wrapping to the first.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from uhashring import HashRing

# Hot databases are looked up on every call; a Ring never changes (a new membership builds a new one).
OWNER_CACHE = 4096
HASH = "md5"  # what Topology answers tell clients (loot.v1.TopologyResponse.ring_hash)
POINTS = 160  # points per shard name (uhashring's default for its md5 ring, pinned here)


class Ring:
    def __init__(self, names: Iterable[str]):
        self.names = tuple(sorted(set(names)))
        if not self.names:
            raise ValueError("a ring needs at least one shard name")
        self._ring = HashRing(nodes=list(self.names), vnodes=POINTS)
        self._owner = functools.lru_cache(maxsize=OWNER_CACHE)(self._ring.get_node)

    def owner(self, database_id: str) -> str:
        return self._owner(database_id)

    def fraction(self, name: str) -> float:
        """The share of database ids `name` owns: the arcs of the 128-bit hash circle ending at its points
        (a point owns the ids hashing after the point before it, up to itself)."""
        points = sorted(self._ring.get_points())
        owned, previous = 0, points[-1][0] - _CIRCLE
        for point, owner in points:
            if owner == name:
                owned += point - previous
            previous = point
        return owned / _CIRCLE


_CIRCLE = 2 ** 128  # uhashring hashes with MD5
