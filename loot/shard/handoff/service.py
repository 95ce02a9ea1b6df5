"""The Handoff service: what a shard answers other shards about databases that moved away from it."""

from __future__ import annotations

import asyncio
import functools

import grpc

from loot.ids import is_database_id
from loot.internal.v1 import shard_pb2, shard_pb2_grpc
from loot.membership import MembershipSource
from loot.status import Fault, guard
from loot.shard.handoff import files
from loot.shard.handoff.fencing import Fencing
from loot.shard.handoff.progress import Progress
from loot.shard.storage import Storage


class HandoffService(shard_pb2_grpc.HandoffServicer):
    def __init__(self, name: str, membership: MembershipSource, storage: Storage, fencing: Fencing,
                 progress: Progress):
        self.name = name
        self.membership = membership
        self.storage = storage
        self.fencing = fencing
        self.progress = progress

    @guard
    async def Owned(self, request: shard_pb2.OwnedRequest, context) -> shard_pb2.OwnedResponse:
        await self._at_epoch(request.epoch)
        ring = self.membership.current.ring
        wanted = lambda database_id: ring.owner(database_id) == request.owner  # noqa: E731
        ids = await asyncio.get_running_loop().run_in_executor(None, files.held, self.storage, wanted)
        return shard_pb2.OwnedResponse(database_ids=ids)

    @guard
    async def Copy(self, request: shard_pb2.HandoffRequest, context: grpc.aio.ServicerContext) -> None:
        await self._for_its_owner(request)
        loop = asyncio.get_running_loop()
        copied = await loop.run_in_executor(None, files.copy, self.storage, request.database_id)
        if copied is None:
            raise Fault(grpc.StatusCode.NOT_FOUND, "NO_DATABASE",
                        f"{self.name} holds no file for this database: it is new", shard=self.name)
        try:
            # Fenced: no request writes it meanwhile, so the row matches the copy.
            row = await loop.run_in_executor(None, files.catalog_row, self.storage, request.database_id)
            with open(copied, "rb") as file:  # read off the event loop, which serves requests meanwhile
                while chunk := await loop.run_in_executor(None, file.read, files.CHUNK):
                    await context.write(shard_pb2.HandoffChunk(data=chunk, row=row))
                    row = None  # the first chunk carries it
        finally:
            copied.unlink(missing_ok=True)

    @guard
    async def Confirm(self, request: shard_pb2.HandoffRequest, context) -> shard_pb2.ConfirmResponse:
        await self._for_its_owner(request)
        retire = functools.partial(files.retire, self.storage, request.database_id, request.epoch)
        if await asyncio.get_running_loop().run_in_executor(None, retire):
            self.progress.handed_off += 1
        return shard_pb2.ConfirmResponse()

    @guard
    async def Status(self, request: shard_pb2.StatusRequest, context) -> shard_pb2.HandoffStatus:
        return self.progress.status()

    async def _for_its_owner(self, request: shard_pb2.HandoffRequest) -> None:
        """Only the database's owner under the caller's epoch, which must be this shard's, gets it."""
        if not is_database_id(request.database_id):
            raise Fault(grpc.StatusCode.INVALID_ARGUMENT, "BAD_DATABASE_ID", "not a database id")
        await self._at_epoch(request.epoch)
        owner = self.membership.current.ring.owner(request.database_id)
        if request.owner != owner or owner == self.name:
            raise Fault(grpc.StatusCode.FAILED_PRECONDITION, "WRONG_SHARD",
                        f"{request.owner or 'the caller'} does not own this database under epoch {request.epoch}; "
                        f"{owner} does", owner=owner, epoch=request.epoch)

    async def _at_epoch(self, epoch: int) -> None:
        """Answer only under the caller's epoch, once this shard has fenced what that epoch took away."""
        if epoch > self.membership.current.epoch:
            self.membership.reload()  # the caller saw the new file first
        current = self.membership.current.epoch
        if current < epoch:  # its file has not reached us yet (a ConfigMap takes a while): retry later
            raise Fault(grpc.StatusCode.UNAVAILABLE, "EPOCH_BEHIND",
                        f"{self.name} is still at membership epoch {current}, behind {epoch}", epoch=current)
        if current > epoch:
            raise Fault(grpc.StatusCode.FAILED_PRECONDITION, "STALE_EPOCH",
                        f"{self.name} is at membership epoch {current}, past {epoch}", epoch=current)
        await self.fencing.wait(epoch)
