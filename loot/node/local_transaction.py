"""A client's Transaction stream served by the shard that owns its database, in-process.

The shard's transaction code (loot/shard/transaction_stream.py) reads internal messages, the first with the
router's Context, and writes response messages; the public handler reads and writes bytes. `Envelope` is the
client's call seen as the internal one: each request parsed once, the token's Context on the first, each
response serialized once. It keeps the first request's bytes until something is answered: a `begin` this shard
refuses as no longer its own goes to the new owner as it came (loot/node/one_hop.py).
"""

from __future__ import annotations

import grpc
from google.protobuf.message import DecodeError

from loot.internal.v1 import shard_pb2
from loot.status import Fault
from loot.v1 import database_pb2 as pb


class Envelope:
    def __init__(self, context: grpc.aio.ServicerContext, shard_context: shard_pb2.Context):
        self._context = context
        self._shard_context: shard_pb2.Context | None = shard_context
        self.first: bytes | None = None  # the client's first request, as it came
        self.answered = False  # something was written to the client: the transaction lives here

    async def read(self) -> shard_pb2.ShardTransactionRequest:
        data = await self._context.read()
        if data is grpc.aio.EOF:
            return data
        try:
            request = pb.TransactionRequest.FromString(data)
        except DecodeError:
            raise Fault(grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED_REQUEST",
                        "the request is not a valid loot.v1.TransactionRequest") from None
        first, self._shard_context = self._shard_context, None
        if first is not None:
            self.first = data
        return shard_pb2.ShardTransactionRequest(context=first, request=request)

    async def write(self, response: pb.TransactionResponse) -> None:
        self.answered = True
        await self._context.write(response.SerializeToString())

    def time_remaining(self) -> float | None:
        return self._context.time_remaining()
