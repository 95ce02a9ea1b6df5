"""The old owner's side: stop serving a database the moment the membership gives it away.

On each new membership the shard closes every open database it no longer owns, after
the request in progress on it (Databases.fence); requests still queued for it are then
refused by the ownership check that runs once they hold the database. Only after that
fence does the shard list or copy those databases for their new owner.
"""

from __future__ import annotations

import asyncio
import logging

from loot.membership import Membership, MembershipSource
from loot.shard.databases import Databases

log = logging.getLogger("loot.handoff")


class Fencing:
    def __init__(self, name: str, membership: MembershipSource, databases: Databases):
        self.name = name
        self.databases = databases
        self.fenced_epoch = membership.current.epoch  # nothing is open before the shard serves
        self._fenced = asyncio.Condition()
        self._tasks: set[asyncio.Task] = set()
        membership.on_change(self._changed)

    def _changed(self, membership: Membership) -> None:
        task = asyncio.get_running_loop().create_task(self._fence(membership))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fence(self, membership: Membership) -> None:
        try:
            closed = await self.databases.fence(lambda database_id: membership.ring.owner(database_id) != self.name)
            log.info("epoch %d: fenced %d open database(s) that moved away", membership.epoch, closed)
        except Exception:  # a failed close: no request can reach the database any more, so the fence holds
            log.exception("epoch %d: closing a database that moved away failed", membership.epoch)
        async with self._fenced:
            self.fenced_epoch = max(self.fenced_epoch, membership.epoch)
            self._fenced.notify_all()

    async def wait(self, epoch: int) -> None:
        """Return once every database moved away under `epoch` (or later) is closed."""
        async with self._fenced:
            await self._fenced.wait_for(lambda: self.fenced_epoch >= epoch)
