"""A client's Transaction stream, forwarded to its database's shard on a stream of its own.

Not multiplexed on the Forward streams (loot/router/forward_client.py): a transaction is a conversation
that holds its database, and its own stream ends it with the client — a client or router that goes
away cancels the shard's stream, and the shard rolls back (docs/transactions.md). The Context goes on the
first message only (loot/router/envelope.py); the shard's answers come back as they are. A `begin`
refused WRONG_SHARD by a shard under a newer membership is sent once more, as unary calls are; so is one
whose stream failed before reaching the shard (its channel was still reconnecting: a restarted shard), once
the channel is connected again (loot/router/forward_client.py, `reconnected`). A begin alone commits nothing, so sending it
again can apply nothing twice.

A shard stream that breaks without the shard's own status ran a transaction that the shard rolls back or
lost with its process: ABORTED, nothing of it applied — unless the client's commit had been sent and not
answered, when it may have committed (OUTCOME_UNKNOWN). One that never answered: UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc
from google.protobuf.message import DecodeError
from google.rpc import status_pb2
from grpc_status import rpc_status

from loot.membership import EPOCH_HEADER
from loot.observability import request_id
from loot.status import Fault, abort
from loot.v1 import database_pb2 as pb
from loot.router.envelope import shard_request
from loot.router.forward_client import reconnected
from loot.router.shards import Shards

TRANSACTION = "/loot.internal.v1.Shard/Transaction"


async def forward(context: grpc.aio.ServicerContext, context_field: bytes, database_id: str, shards: Shards,
                  corrected_by: Callable[[status_pb2.Status, int], bool], first: bytes | None = None) -> None:
    """Relay the client's stream to the shard and back. `corrected_by(status, epoch)`: whether a refusal
    routed under `epoch` calls for one more try (a WRONG_SHARD from a newer membership, now loaded).
    `first`: the client's first request, if it was read already (a shard that refused it itself)."""
    if first is None:
        first = await context.read()
    if first is grpc.aio.EOF:
        return
    for first_attempt in (True, False):
        name, channel, epoch = shards.channel_for(database_id)
        metadata = (shards.secret, (EPOCH_HEADER, str(epoch)), (request_id.HEADER, request_id.current.get()))
        call = channel.stream_stream(TRANSACTION, _registered_method=True)(metadata=metadata,
                                                                            timeout=context.time_remaining())
        try:
            await call.write(shard_request(context_field, first))
            begun = await call.read()
            break
        except grpc.aio.AioRpcError as error:
            call.cancel()
            status = rpc_status.from_call(error)
            if first_attempt and status is None and error.code() == grpc.StatusCode.UNAVAILABLE:
                await reconnected(channel, context.time_remaining())
            elif not (first_attempt and status is not None and corrected_by(status, epoch)):
                await _lost(context, error, name, committing=False, answered=False)
    committing = asyncio.Event()
    pumping = asyncio.create_task(_pump(context, call, committing))
    pumping.add_done_callback(lambda task: task.cancelled() or task.exception())  # it ends with the call
    try:
        response = begun
        while response is not grpc.aio.EOF:
            await context.write(response)
            response = await call.read()
    except grpc.aio.AioRpcError as error:
        await _lost(context, error, name, committing.is_set(), answered=True)
    finally:
        call.cancel()  # the shard rolls back whatever is still open


async def _lost(context: grpc.aio.ServicerContext, error: grpc.aio.AioRpcError, name: str, committing: bool,
                answered: bool) -> None:
    """End the client's call for a shard stream that failed: with the shard's own status if it sent one."""
    status = rpc_status.from_call(error)
    if status is not None:
        await abort(context, rpc_status.to_status(status))
    if committing:
        raise Fault(grpc.StatusCode.UNKNOWN, "OUTCOME_UNKNOWN",
                    f"shard {name} did not answer the transaction's commit ({error.code().name}): it may or may "
                    "not have been applied; read before retrying", shard=name) from None
    if not answered:
        raise Fault(grpc.StatusCode.UNAVAILABLE, "SHARD_UNAVAILABLE",
                    f"shard {name} is unreachable ({error.code().name}); retry later", shard=name) from None
    raise Fault(grpc.StatusCode.ABORTED, "TRANSACTION_ABORTED",
                f"the transaction's stream to shard {name} broke ({error.code().name}): nothing of it was "
                "applied; retry it", shard=name) from None


async def _pump(context: grpc.aio.ServicerContext, call: grpc.aio.StreamStreamCall, committing: asyncio.Event) -> None:
    """The client's messages after the first, to the shard."""
    while (request := await context.read()) is not grpc.aio.EOF:
        if _commits(request):
            committing.set()
        await call.write(shard_request(b"", request))
    await call.done_writing()


def _commits(request: bytes) -> bool:
    try:
        message = pb.TransactionRequest.FromString(request)
    except DecodeError:
        return False  # the shard refuses it
    return message.WhichOneof("step") == "end" and message.end.commit
