"""Per-account quotas on databases and bytes, enforced by each shard on its share (docs/operations.md#quotas).

Routers cannot see either (a call that creates a database looks like any other), and asking every
shard at each creation would put the whole cluster on that path. So each shard enforces a share of
each quota, sized from the share of database ids the ring gives it: an account's databases land on
shards as their ids hash, so a shard owning a fraction f of the ring holds about f of them, give or
take about the square root of that. A share of f × quota plus four of those square roots (never more
than the quota) refuses an account early only when the hash piles four standard deviations more of
its databases on one shard than expected; the cluster-wide overshoot is the sum of those margins.

The counts come from the catalog's in-memory usage (loot/shard/catalog.py): a creation is admitted
under the catalog's lock, so creations running at once on a shard never pass its share together.
Bytes are held at the share by SQLite itself: each write runs with the database's page limit lowered
to what the account has left, and a write that needs more fails DATABASE_FULL, reported as
ACCOUNT_BYTES_QUOTA. Point reads never look at any of it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import grpc

from loot.membership import MembershipSource
from loot.ring import Ring
from loot.status import Fault
from loot.shard.catalog import Usage

DATABASES, BYTES = "ACCOUNT_DATABASE_QUOTA", "ACCOUNT_BYTES_QUOTA"
_DEVIATIONS = 4  # margin of a share, in standard deviations of an even spread


def database_share(quota: int, fraction: float) -> int:
    """Databases a shard owning `fraction` of the ring lets one account have, for a cluster quota."""
    expected = quota * fraction
    return min(quota, math.ceil(expected + _DEVIATIONS * math.sqrt(expected)))


def bytes_share(quota: int, fraction: float, databases: int) -> int:
    """Bytes a shard owning `fraction` of the ring lets one account's `databases` there take: the spread
    of its bytes follows the spread of its databases, relatively 1/sqrt(databases) of an even share."""
    return min(quota, math.ceil(quota * fraction * (1 + _DEVIATIONS / math.sqrt(max(1, databases)))))


class Quotas:
    def __init__(self, databases: int, bytes_: int, shard: str, membership: MembershipSource,
                 refused: Callable[[str], None] = lambda reason: None):
        """`databases`, `bytes_`: the cluster-wide quotas, 0 for none; `refused(reason)` counts refusals."""
        self.databases = databases
        self.bytes = bytes_
        self._shard = shard
        self._membership = membership
        self._refused = refused
        self._ring: Ring | None = None
        self._fraction = 1.0

    def fraction(self) -> float:
        """This shard's share of database ids under the current membership."""
        ring = self._membership.current.ring
        if ring is not self._ring:
            self._ring, self._fraction = ring, ring.fraction(self._shard)  # 0 once the ring no longer names it
        return self._fraction

    def admit_creation(self, account: str, size: int, usage: Usage) -> None:
        """Refuse a new database of `account` (`size` bytes to begin with), which has `usage` here, past
        either share."""
        if self.databases:
            share = database_share(self.databases, self.fraction())
            if usage.databases >= share:
                raise self._refusal(DATABASES, f"account {account} already has {usage.databases} databases on shard "
                                    f"{self._shard}, the most this shard allows it: its share of the account "
                                    f"quota of {self.databases} databases across the cluster (docs/operations.md"
                                    "#quotas); destroying the account's databases there makes room", self.databases,
                                    share, count=usage.databases)
        if self.bytes and self.room(usage) < size:
            raise self.bytes_refusal(account, usage)

    def room(self, usage: Usage) -> int:
        """Bytes an account's databases here, with `usage`, may still grow by under the bytes quota (0 or more)."""
        return max(0, bytes_share(self.bytes, self.fraction(), usage.databases) - usage.bytes)

    def bytes_refusal(self, account: str, usage: Usage) -> Fault:
        """What a write that needed more than the account's room gets (rolled back with its request)."""
        share = bytes_share(self.bytes, self.fraction(), usage.databases)
        return self._refusal(BYTES, f"account {account}'s databases on shard {self._shard} take {usage.bytes} bytes, "
                             f"and this shard allows them {share}: their share of the account quota of {self.bytes} "
                             "bytes across the cluster (docs/operations.md#quotas); the write was refused. Reads, and "
                             "writes that need no new pages, still work; destroying the account's databases there "
                             "makes room", self.bytes, share, bytes=usage.bytes)

    def _refusal(self, reason: str, message: str, limit: int, share: int, **count: int) -> Fault:
        self._refused(reason)
        return Fault(grpc.StatusCode.RESOURCE_EXHAUSTED, reason, message, limit=limit, shard_limit=share,
                     shard=self._shard, **count)
