"""The public loot.v1.Database service: verify, route, forward the call's bytes.

The router parses neither requests nor responses: the client's request bytes go to the
shard inside the shard request (router/envelope.py) and the shard's response bytes come
back untouched. One serialization per hop, by the client and by the shard.
"""

from __future__ import annotations

import grpc
from google.protobuf.message import DecodeError
from grpc_status import rpc_status

from loot.membership import parse_epoch
from loot.observability import request_id
from loot.observability.interceptor import observed
from loot.serving import register
from loot.secret import SECRET_HEADER
from loot.status import Fault, abort, error_info, guard
from loot.v1 import database_pb2 as pb
from router.auth import authenticate
from router.envelope import shard_request
from router.shards import Shards, epoch_entry

SERVICE = "loot.v1.Database"
# Parsed only when a shard refuses a call without saying why: to tell the client's garbage from a fault.
REQUEST_TYPES = {"Execute": pb.ExecuteRequest, "Batch": pb.BatchRequest, "Describe": pb.DescribeRequest}


class DatabaseService:
    def __init__(self, shards: Shards, secret: str, forward_timeout: float):
        self.shards = shards
        self.secret = (SECRET_HEADER, secret)
        self.forward_timeout = forward_timeout

    def add_to(self, server: grpc.aio.Server) -> None:
        """Serve the methods, observed, taking and returning serialized messages."""
        register(server, SERVICE, {method: grpc.unary_unary_rpc_method_handler(
            observed(f"/{SERVICE}/{method}", getattr(self, method), return_request_id=True))
            for method in REQUEST_TYPES})

    @guard
    async def Execute(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return await self._forward("Execute", request, context)

    @guard
    async def Batch(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return await self._forward("Batch", request, context)

    @guard
    async def Describe(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return await self._forward("Describe", request, context)

    async def _forward(self, method: str, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        admission = authenticate(context)
        message = shard_request(admission.context_field, request)
        for first_attempt in (True, False):
            name, calls, routed_under = self.shards.for_database(admission.database_id)
            metadata = (self.secret, epoch_entry(routed_under), (request_id.HEADER, request_id.current.get()))
            try:
                return await calls[method](message, timeout=self._timeout(context), metadata=metadata)
            except grpc.aio.AioRpcError as error:
                if first_attempt and self._corrected_by(error, routed_under):
                    continue  # the shard never ran it; once more under the membership it pointed to
                status = rpc_status.from_call(error)
                if status is not None:  # the shard's own answer: pass it through unchanged
                    await abort(context, rpc_status.to_status(status))
                _refuse_if_malformed(method, request)
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


def _refuse_if_malformed(method: str, request: bytes) -> None:
    """A shard cannot parse a shard request holding bytes that are not a `method` request
    (it answers without a Loot status); say so instead of blaming the shard."""
    try:
        REQUEST_TYPES[method].FromString(request)
    except DecodeError:
        raise Fault(grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED_REQUEST",
                    f"the request is not a valid {REQUEST_TYPES[method].DESCRIPTOR.full_name}") from None


def _transport_fault(name: str, error: grpc.aio.AioRpcError) -> Fault:
    if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
        return Fault(grpc.StatusCode.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED",
                     f"shard {name} did not answer before the deadline", shard=name)
    return Fault(grpc.StatusCode.UNAVAILABLE, "SHARD_UNAVAILABLE",
                 f"shard {name} is unreachable ({error.code().name}); retry later", shard=name)
