"""The public loot.v1.Database service: verify, route, forward."""

from __future__ import annotations

import grpc
from grpc_status import rpc_status

from loot.internal.v1 import shard_pb2
from loot.secret import SECRET_HEADER
from loot.membership import EPOCH_HEADER, parse_epoch
from loot.status import Fault, error_info, guard
from loot.v1 import database_pb2 as pb
from loot.v1 import database_pb2_grpc
from router.auth import authenticate
from router.shards import Shards


class DatabaseService(database_pb2_grpc.DatabaseServicer):
    def __init__(self, shards: Shards, secret: str, forward_timeout: float):
        self.shards = shards
        self.metadata = ((SECRET_HEADER, secret),)
        self.forward_timeout = forward_timeout

    @guard
    async def Execute(self, request: pb.ExecuteRequest, context) -> pb.ExecuteResponse:
        return await self._forward("Execute", shard_pb2.ShardExecuteRequest, request, context)

    @guard
    async def Batch(self, request: pb.BatchRequest, context) -> pb.BatchResponse:
        return await self._forward("Batch", shard_pb2.ShardBatchRequest, request, context)

    @guard
    async def Describe(self, request: pb.DescribeRequest, context) -> pb.DescribeResponse:
        return await self._forward("Describe", shard_pb2.ShardDescribeRequest, request, context)

    async def _forward(self, method: str, wrapper, request, context: grpc.aio.ServicerContext):
        shard_context = authenticate(context).shard_context
        message = wrapper(context=shard_context, request=request)
        for first_attempt in (True, False):
            routed_under = self.shards.epoch
            name, stub = self.shards.for_database(shard_context.database_id)
            metadata = self.metadata + ((EPOCH_HEADER, str(routed_under)),)
            try:
                return await getattr(stub, method)(message, timeout=self._timeout(context), metadata=metadata)
            except grpc.aio.AioRpcError as error:
                if first_attempt and self._corrected_by(error, routed_under):
                    continue  # the shard never ran it; once more under the membership it pointed to
                status = rpc_status.from_call(error)
                if status is not None:  # the shard's own answer: pass it through unchanged
                    await context.abort_with_status(rpc_status.to_status(status))
                raise _transport_fault(name, error)

    def _timeout(self, context: grpc.aio.ServicerContext) -> float:
        remaining = context.time_remaining()
        return self.forward_timeout if remaining is None else min(remaining, self.forward_timeout)

    def _corrected_by(self, error: grpc.aio.AioRpcError, routed_under: int) -> bool:
        """A WRONG_SHARD refusal from a shard under a newer epoch than the call was routed under:
        reload our membership now, without waiting for the next poll. True when we are now past
        that epoch (by this reload, or by one while the call was in flight)."""
        info = error_info(error)
        if info is None or info.reason != "WRONG_SHARD":
            return False
        if parse_epoch(info.metadata.get("epoch", "")) <= routed_under:
            return False
        self.shards.source.reload()
        return self.shards.epoch > routed_under


def _transport_fault(name: str, error: grpc.aio.AioRpcError) -> Fault:
    if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
        return Fault(grpc.StatusCode.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED",
                     f"shard {name} did not answer before the deadline", shard=name)
    return Fault(grpc.StatusCode.UNAVAILABLE, "SHARD_UNAVAILABLE",
                 f"shard {name} is unreachable ({error.code().name}); retry later", shard=name)
