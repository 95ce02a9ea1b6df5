"""The internal Shard service: admit the router's call, run it on the database."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable

import grpc
from google.protobuf.message import DecodeError, Message

from loot.ids import database_id
from loot.internal.v1 import shard_pb2, shard_pb2_grpc
from loot.membership import EPOCH_HEADER, MembershipSource, parse_epoch
from loot.observability.handlers import observed
from loot.status import Fault, guard
from loot.v1 import database_pb2 as pb
from loot.shard import engine, fleet, transaction_stream
from loot.shard.access.enforcer import for_connection
from loot.shard.catalog import Identity
from loot.shard.databases import Databases
from loot.shard.describe import describe
from loot.shard.forward_server import SERVICE, Forwarding, Method
from loot.shard.storage import OpenDatabase

_ADMISSION_CACHE = 4096
Arrival = Callable[[str, float | None], Awaitable[None]]  # (database id, seconds left): returns once it may open


async def _always_here(database_id: str, remaining: float | None) -> None:
    return None


class ShardService(shard_pb2_grpc.ShardServicer):
    def __init__(self, name: str, membership: MembershipSource, databases: Databases,
                 arrival: Arrival = _always_here):
        self.name = name
        self.membership = membership
        self.databases = databases
        databases.still_owned = self._refuse_unless_owned
        self.arrival = arrival  # a database moving here is opened only once its copy is in place (loot/shard/handoff)
        # A pure function of its arguments: hot databases skip a hash per call (the ring caches owners itself).
        self._database_id = functools.lru_cache(maxsize=_ADMISSION_CACHE)(database_id)
        self._transaction = observed(f"/{SERVICE}/Transaction", self._serve_transaction, return_request_id=False)
        self.forwarding = Forwarding(name, {
            shard_pb2.FORWARDED_METHOD_EXECUTE: Method("Execute", shard_pb2.ShardExecuteRequest, self.execute),
            shard_pb2.FORWARDED_METHOD_BATCH: Method("Batch", shard_pb2.ShardBatchRequest, self.batch),
            shard_pb2.FORWARDED_METHOD_DESCRIBE: Method("Describe", shard_pb2.ShardDescribeRequest, self.describe),
        }, databases.limits.request_bytes)
        self._public = {"Execute": (pb.ExecuteRequest, self.run_execute), "Batch": (pb.BatchRequest, self.run_batch),
                        "Describe": (pb.DescribeRequest, self.run_describe)}

    @guard
    async def Execute(self, request: shard_pb2.ShardExecuteRequest, context) -> pb.ExecuteResponse:
        return await self.execute(request, context.time_remaining(), _router_epoch(context))

    @guard
    async def Batch(self, request: shard_pb2.ShardBatchRequest, context) -> pb.BatchResponse:
        return await self.batch(request, context.time_remaining(), _router_epoch(context))

    @guard
    async def Describe(self, request: shard_pb2.ShardDescribeRequest, context) -> pb.DescribeResponse:
        return await self.describe(request, context.time_remaining(), _router_epoch(context))

    async def Transaction(self, requests, context: grpc.aio.ServicerContext) -> None:
        await self._transaction(requests, context)  # observed as one call: access log line, metrics

    @guard
    async def _serve_transaction(self, requests, context: grpc.aio.ServicerContext) -> None:
        await self.transact(context, _router_epoch(context))

    async def transact(self, context, epoch: int) -> None:
        """Serve a transaction's stream (`context`: read, write, time_remaining) routed under `epoch`."""
        await transaction_stream.serve(context, self.databases, functools.partial(self._open_here, epoch=epoch),
                                       self.forwarding.held)

    @guard
    async def ListDatabases(self, request: shard_pb2.ShardListDatabasesRequest, context) -> pb.ListDatabasesResponse:
        return await self._from_catalog(fleet.list_databases, request)

    @guard
    async def Census(self, request: shard_pb2.ShardCensusRequest, context) -> pb.CensusResponse:
        return await self._from_catalog(fleet.census, request)

    async def _from_catalog(self, answer, request):
        """`answer(catalog, request)` off the event loop (the catalog is a file, shared with the workers)."""
        catalog = self.databases.storage.catalog
        if catalog is None:
            raise Fault(grpc.StatusCode.FAILED_PRECONDITION, "NO_CATALOG", f"shard {self.name} keeps no catalog")
        return await asyncio.get_running_loop().run_in_executor(None, answer, catalog, request)

    async def Forward(self, requests, context: grpc.aio.ServicerContext) -> None:
        await self.forwarding.serve(context)  # reads `requests` through the context, writes answers to it

    # The calls themselves, for the unary methods and Forward alike: the request, the seconds left
    # before the client's deadline (None: no deadline) and the epoch the router routed it under.

    async def execute(self, request: shard_pb2.ShardExecuteRequest, remaining: float | None,
                      router_epoch: int) -> pb.ExecuteResponse:
        return await self.run_execute(request.context, request.request, remaining, router_epoch)

    async def batch(self, request: shard_pb2.ShardBatchRequest, remaining: float | None,
                    router_epoch: int) -> pb.BatchResponse:
        return await self.run_batch(request.context, request.request, remaining, router_epoch)

    async def describe(self, request: shard_pb2.ShardDescribeRequest, remaining: float | None,
                       router_epoch: int) -> pb.DescribeResponse:
        return await self.run_describe(request.context, request.request, remaining, router_epoch)

    async def run_public(self, method: str, shard_context: shard_pb2.Context, request: bytes,
                         remaining: float | None, epoch: int) -> Message:
        """A public call (Execute, Batch, Describe) from the client's own request bytes, with the Context
        of its verified token: what Forward runs for the same call, without the shard request around it
        (the public API served here: loot/node/)."""
        request_type, run = self._public[method]
        with self.forwarding.held.hold(len(request)):
            return await run(shard_context, _parsed(request_type, request), remaining, epoch)

    async def run_execute(self, shard_context: shard_pb2.Context, request: pb.ExecuteRequest,
                          remaining: float | None, router_epoch: int) -> pb.ExecuteResponse:
        outcome = await self._run(shard_context, [request.statement], remaining, router_epoch)
        return pb.ExecuteResponse(result=outcome.results[0], schema_changes=outcome.schema_changes,
                                  destroyed=outcome.destroyed)

    async def run_batch(self, shard_context: shard_pb2.Context, request: pb.BatchRequest,
                        remaining: float | None, router_epoch: int) -> pb.BatchResponse:
        outcome = await self._run(shard_context, request.statements, remaining, router_epoch)
        return pb.BatchResponse(results=outcome.results, schema_changes=outcome.schema_changes,
                                destroyed=outcome.destroyed)

    async def run_describe(self, shard_context: shard_pb2.Context, request: pb.DescribeRequest,
                           remaining: float | None, router_epoch: int) -> pb.DescribeResponse:
        self._admit(shard_context, router_epoch)
        deadline = _deadline(remaining)
        await self.arrival(shard_context.database_id, remaining)
        return await self.databases.run(shard_context.database_id,
                                        functools.partial(_describe, claim=shard_context.schema),
                                        shard_context.schema, account=shard_context.account, deadline=deadline,
                                        identity=Identity.of(shard_context))

    async def _run(self, shard_context: shard_pb2.Context, statements, remaining: float | None,
                   router_epoch: int) -> engine.Outcome:
        self._admit(shard_context, router_epoch)
        engine.check_request(statements, self.databases.limits)
        deadline = _deadline(remaining)
        await self.arrival(shard_context.database_id, remaining)
        request = dict(context=shard_context, statements=statements, deadline=deadline)
        return await self.databases.run(shard_context.database_id, functools.partial(engine.run, **request),
                                        shard_context.schema, inline=functools.partial(engine.run_inline, **request),
                                        account=shard_context.account, deadline=deadline,
                                        identity=Identity.of(shard_context))

    async def _open_here(self, shard_context: shard_pb2.Context, remaining: float | None, epoch: int) -> None:
        """Admit a transaction's database, once it is in place here."""
        self._admit(shard_context, epoch)
        await self.arrival(shard_context.database_id, remaining)

    def _admit(self, shard_context: shard_pb2.Context, router_epoch: int) -> None:
        if shard_context.database_id != self._database_id(shard_context.account, shard_context.name,
                                                          shard_context.tenant):
            raise Fault(grpc.StatusCode.INVALID_ARGUMENT, "BAD_DATABASE_ID", "the database id does not match its triple")
        if router_epoch > self.membership.current.epoch:
            self.membership.reload()  # the router saw a newer file first; catch up before judging ownership
        self._refuse_unless_owned(shard_context.database_id)

    def _refuse_unless_owned(self, database_id: str) -> None:
        owner = self.membership.current.ring.owner(database_id)
        if owner != self.name:
            epoch = self.membership.current.epoch
            raise Fault(grpc.StatusCode.FAILED_PRECONDITION, "WRONG_SHARD",
                        f"database belongs to {owner}, not {self.name}, under membership epoch {epoch}: "
                        "the router's membership is stale", owner=owner, epoch=epoch)


def _deadline(remaining: float | None) -> float | None:
    """The client's deadline on the monotonic clock. Every wait and every statement ends by it, and the
    request commits only before it: a DEADLINE_EXCEEDED from the shard means nothing was applied."""
    return None if remaining is None else time.monotonic() + remaining


def _parsed(request_type: type[Message], request: bytes) -> Message:
    try:
        return request_type.FromString(request)
    except DecodeError:
        raise Fault(grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED_REQUEST",
                    f"the request is not a valid {request_type.DESCRIPTOR.full_name}") from None


def _router_epoch(context: grpc.aio.ServicerContext) -> int:
    for key, value in context.invocation_metadata() or ():
        if key == EPOCH_HEADER:
            return parse_epoch(value)
    return -1


def _describe(database: OpenDatabase, claim: str) -> pb.DescribeResponse:
    changes = engine.apply_schema(database, claim)
    with for_connection(database.conn).privileged():  # outside a request: see the real objects
        response = describe(database.conn)
    response.schema_changes.extend(changes)
    return response
