"""The consistent-hash ring: which shard owns a database id.

Built over shard *names* (never addresses), so moving a shard to a new address
moves no data. Routers and shards build it from the same membership list.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from uhashring import HashRing

# Hot databases are looked up on every call; a Ring never changes (a new membership builds a new one).
OWNER_CACHE = 4096


class Ring:
    def __init__(self, names: Iterable[str]):
        self.names = tuple(sorted(set(names)))
        if not self.names:
            raise ValueError("a ring needs at least one shard name")
        self._ring = HashRing(nodes=list(self.names))
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
