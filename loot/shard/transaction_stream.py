"""The Shard service's Transaction method: one interactive transaction per stream (docs/transactions.md).

The first message carries the router's Context and `begin`: the database is leased (it waits in the
database's queue like any request, bounded by the client's deadline and the total limit), then opened:
schema, BEGIN IMMEDIATE, `before`. Each `statements` message is answered in order; `end` commits (`after`,
COMMIT) or rolls back and ends the stream. The total limit runs from the lease.

Whatever else ends the stream rolls the transaction back before the database is given back: the router
closing its side without `end`, the stream cancelled (the client or the router went away), no message
within the idle limit, the total limit, a fence (the database is moving to another shard), an error that
made the transaction unusable. The last four end the call ABORTED with a reason saying which.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable

import grpc

from loot.internal.v1 import shard_pb2
from loot.status import Fault
from loot.v1 import database_pb2 as pb
from loot.shard import engine
from loot.shard.catalog import Identity
from loot.shard.databases import Databases, Lease
from loot.shard.held_requests import HeldRequests
from loot.shard.limits import Limits
from loot.shard.transaction_phases import TransactionPhases

# (the Context, seconds left before the client's deadline or None): returns once the database may open here.
Admit = Callable[[shard_pb2.Context, float | None], Awaitable[None]]


async def serve(context: grpc.aio.ServicerContext, databases: Databases, admit: Admit, held: HeldRequests) -> None:
    """Serve one transaction's stream; `held` counts each message while it runs (`--request-bytes`)."""
    limits = databases.limits
    first = await _first(context, limits)
    if first is None:
        return
    shard_context = first.context
    remaining = context.time_remaining()
    client_deadline = float("inf") if remaining is None else time.monotonic() + remaining
    await admit(shard_context, remaining)
    lease = await databases.lease(shard_context.database_id, shard_context.account,
                                  min(client_deadline, time.monotonic() + limits.transaction_seconds),
                                  Identity.of(shard_context))
    deadline = min(client_deadline, time.monotonic() + limits.transaction_seconds)
    phases = TransactionPhases(shard_context, deadline)
    try:
        begun = await lease.run(phases.begin, shard_context.schema)
        await context.write(pb.TransactionResponse(begun=begun))
        while (request := await _next(context, lease, limits, deadline)) is not None:
            response = await _step(lease, phases, request.request, limits, held)
            await context.write(response)
            if response.HasField("ended"):
                return
    finally:
        await asyncio.shield(lease.end(phases.abandon))


async def _first(context: grpc.aio.ServicerContext, limits: Limits) -> shard_pb2.ShardTransactionRequest | None:
    try:
        async with asyncio.timeout(limits.transaction_idle_seconds):
            first = await context.read()
    except TimeoutError:
        raise _idle(limits) from None
    if first is grpc.aio.EOF:
        return None
    if not first.HasField("context") or first.request.WhichOneof("step") != "begin":
        raise Fault(grpc.StatusCode.INVALID_ARGUMENT, "BAD_TRANSACTION", "a transaction's first message is `begin`")
    return first


async def _next(context: grpc.aio.ServicerContext, lease: Lease, limits: Limits,
                deadline: float) -> shard_pb2.ShardTransactionRequest | None:
    """The next message, or None once the router closed its side; raises ABORTED past a limit or a fence."""
    reading = asyncio.ensure_future(context.read())
    revoked = asyncio.ensure_future(lease.revoked.wait())
    timeout = max(0.0, min(limits.transaction_idle_seconds, deadline - time.monotonic()))
    try:
        await asyncio.wait({reading, revoked}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        revoked.cancel()
    if not lease.revoked.is_set() and reading.done():
        request = reading.result()
        return None if request is grpc.aio.EOF else request
    # Not cancelled: cancelling a read would end the call INTERNAL, not with the status that says why.
    reading.add_done_callback(lambda read: read.cancelled() or read.exception())
    if lease.revoked.is_set():
        raise Fault(grpc.StatusCode.ABORTED, "TRANSACTION_ABORTED", "the database is moving to another shard: "
                    "the transaction was rolled back, nothing of it applied; retry it")
    if time.monotonic() >= deadline:
        raise Fault(grpc.StatusCode.ABORTED, "TRANSACTION_TIMEOUT",
                    f"the transaction lasted longer than {limits.transaction_seconds:g} s: it was rolled back, "
                    "nothing of it applied", limit=limits.transaction_seconds)
    raise _idle(limits)


async def _step(lease: Lease, phases: TransactionPhases, request: pb.TransactionRequest, limits: Limits,
                held: HeldRequests) -> pb.TransactionResponse:
    step = request.WhichOneof("step")
    if step == "end":
        return pb.TransactionResponse(ended=await lease.run(functools.partial(phases.end, commit=request.end.commit)))
    if step != "statements":
        raise Fault(grpc.StatusCode.INVALID_ARGUMENT, "BAD_TRANSACTION",
                    "after `begin`, a transaction's messages are `statements` or `end`")
    try:
        engine.check_request(request.statements.statements, limits)
        with held.hold(request.ByteSize()):
            results = await lease.run(functools.partial(phases.statements, statements=request.statements.statements))
    except Fault as fault:
        if not phases.open:  # the error ended the transaction: the call ends with it
            raise
        return pb.TransactionResponse(error=fault.status_message().SerializeToString())
    return pb.TransactionResponse(results=results)


def _idle(limits: Limits) -> Fault:
    return Fault(grpc.StatusCode.ABORTED, "TRANSACTION_IDLE",
                 f"no message in the transaction for {limits.transaction_idle_seconds:g} s: it was rolled back, "
                 "nothing of it applied", limit=limits.transaction_idle_seconds)
