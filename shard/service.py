"""The internal Shard service: admit the router's call, run it on the database."""

from __future__ import annotations

import functools

import grpc

from loot.ids import database_id
from loot.internal.v1 import shard_pb2, shard_pb2_grpc
from loot.ring import Ring
from loot.status import Fault, guard
from loot.v1 import database_pb2 as pb
from shard import engine
from shard.databases import Databases


class ShardService(shard_pb2_grpc.ShardServicer):
    def __init__(self, name: str, ring: Ring, databases: Databases):
        self.name = name
        self.ring = ring
        self.databases = databases

    @guard
    async def Execute(self, request: shard_pb2.ShardExecuteRequest, context) -> pb.ExecuteResponse:
        results, changes = await self._run(request.context, [request.request.statement])
        return pb.ExecuteResponse(result=results[0], schema_changes=changes)

    @guard
    async def Batch(self, request: shard_pb2.ShardBatchRequest, context) -> pb.BatchResponse:
        results, changes = await self._run(request.context, request.request.statements)
        return pb.BatchResponse(results=results, schema_changes=changes)

    @guard
    async def Describe(self, request: shard_pb2.ShardDescribeRequest, context) -> pb.DescribeResponse:
        raise Fault(grpc.StatusCode.UNIMPLEMENTED, "NOT_YET", "Describe arrives with the shard engine")

    async def _run(self, context: shard_pb2.Context, statements) -> tuple[list[pb.Result], list[str]]:
        self._admit(context)
        return await self.databases.run(context.database_id, functools.partial(engine.run, context=context, statements=statements))

    def _admit(self, context: shard_pb2.Context) -> None:
        if context.database_id != database_id(context.account, context.name, context.tenant):
            raise Fault(grpc.StatusCode.INVALID_ARGUMENT, "BAD_DATABASE_ID", "the database id does not match its triple")
        owner = self.ring.owner(context.database_id)
        if owner != self.name:
            raise Fault(grpc.StatusCode.FAILED_PRECONDITION, "WRONG_SHARD",
                        f"database belongs to {owner}, not {self.name}: the router's membership is stale",
                        owner=owner)
