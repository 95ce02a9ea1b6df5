"""The public loot.v1.Account service (docs/fleet.md): an account's databases across every shard.

Each shard answers from its own catalog for the verified account alone; the router asks them all at
once and merges. A listing page is the first `page_size` of the shards' pages in (name, tenant) order:
each shard sends at most that many after the page token, so the merge never misses one. A database
moving between shards may be listed by both for a moment: it is kept once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import grpc

from loot import listing
from loot.internal.v1 import shard_pb2, shard_pb2_grpc
from loot.observability.handlers import observed_handler
from loot.serving import add_servicer
from loot.status import Fault, guard
from loot.tokens.cache import VerifiedTokens
from loot.v1 import database_pb2 as pb
from loot.v1 import database_pb2_grpc
from loot.router.admission import Admission
from loot.router.allowlist import Allowlist
from loot.router import destroy_list
from loot.router.auth import admit_call
from loot.router.rate_limits import RateLimits
from loot.router.rollout import Rollout
from loot.router.shards import Shards

SERVICE = "loot.v1.Account"
ShardCall = Callable[[shard_pb2_grpc.ShardStub, float], Awaitable]


class AccountService(database_pb2_grpc.AccountServicer):
    def __init__(self, shards: Shards, timeout: float, tokens: VerifiedTokens[Admission], accounts: Allowlist,
                 limits: RateLimits | None):
        self.shards = shards
        self.timeout = timeout
        self.tokens = tokens
        self.accounts = accounts
        self.limits = limits

    def add_to(self, server: grpc.aio.Server) -> None:
        """Serve it, the unary methods observed (metrics, access log, request id) like the Database service's."""
        add_servicer(server, database_pb2_grpc.add_AccountServicer_to_server, self,
                     lambda method, handler: observed_handler(method, handler, return_request_id=True))

    @guard
    async def ListDatabases(self, request: pb.ListDatabasesRequest, context) -> pb.ListDatabasesResponse:
        admission = admit_call(context, self.tokens, self.accounts, self.limits, account_methods=True)
        size = listing.page_size(request.page_size)
        listing.after(request.page_token)  # a bad token is the caller's error, not every shard's
        asked = shard_pb2.ShardListDatabasesRequest(context=_account(admission), request=request)
        pages = await self._ask_all(lambda stub, timeout: stub.ListDatabases(asked, timeout=timeout,
                                                                             metadata=(self.shards.secret,)), context)
        return merged_page([page.databases for page in pages], size)

    @guard
    async def Census(self, request: pb.CensusRequest, context) -> pb.CensusResponse:
        admission = admit_call(context, self.tokens, self.accounts, self.limits, account_methods=True)
        asked = shard_pb2.ShardCensusRequest(context=_account(admission), request=request)
        answers = await self._ask_all(lambda stub, timeout: stub.Census(asked, timeout=timeout,
                                                                        metadata=(self.shards.secret,)), context)
        return merged_census([answer.groups for answer in answers])

    @guard
    async def Rollout(self, request: pb.RolloutRequest, context: grpc.aio.ServicerContext) -> None:
        admission = admit_call(context, self.tokens, self.accounts, self.limits, account_methods=True)
        rollout = Rollout(self.shards, admission.claims.account, request, self.timeout, context.write)
        await rollout.run(await self._every_database(admission, request.name, context))

    @guard
    async def DestroyDatabases(self, request: pb.DestroyDatabasesRequest, context) -> pb.DestroyDatabasesResponse:
        admission = admit_call(context, self.tokens, self.accounts, self.limits, account_methods=True)
        destroy_list.check(request)
        listed = {info.tenant for info in await self._every_database(admission, request.name, context)}
        return await destroy_list.destroy(self.shards, admission.claims.account, request, listed, self.timeout)

    async def _every_database(self, admission: Admission, name: str,
                              context: grpc.aio.ServicerContext) -> list[pb.DatabaseInfo]:
        databases: list[pb.DatabaseInfo] = []
        token = ""
        while True:
            asked = shard_pb2.ShardListDatabasesRequest(context=_account(admission), request=pb.ListDatabasesRequest(
                name=name, page_size=listing.MAX_PAGE_SIZE, page_token=token))
            pages = await self._ask_all(lambda stub, timeout: stub.ListDatabases(
                asked, timeout=timeout, metadata=(self.shards.secret,)), context)
            page = merged_page([page.databases for page in pages], listing.MAX_PAGE_SIZE)
            databases += page.databases
            token = page.next_page_token
            if not token:
                return databases

    async def _ask_all(self, call: ShardCall, context: grpc.aio.ServicerContext) -> list:
        """Every shard's answer; any shard missing fails the call (a partial answer would look whole)."""
        remaining = context.time_remaining()
        timeout = self.timeout if remaining is None else min(remaining, self.timeout)
        shards = self.shards.every_shard()
        answers = await asyncio.gather(*(call(shard_pb2_grpc.ShardStub(channel), timeout) for _, channel in shards),
                                       return_exceptions=True)
        for (name, _), answer in zip(shards, answers):
            if isinstance(answer, grpc.aio.AioRpcError):
                raise Fault(grpc.StatusCode.UNAVAILABLE, "SHARD_UNAVAILABLE", f"shard {name} did not answer "
                            f"({answer.code().name}: {answer.details()}); retry later", shard=name)
            if isinstance(answer, BaseException):
                raise answer
        return answers


def _account(admission: Admission) -> shard_pb2.Context:
    return shard_pb2.Context(account=admission.claims.account)


def merged_page(pages: list, size: int) -> pb.ListDatabasesResponse:
    """The first `size` databases of the shards' pages in (name, tenant) order, each once, and the token
    for the next page when any shard may hold more."""
    unique = {(info.name, info.tenant): info for page in pages for info in page}
    ordered = [unique[key] for key in sorted(unique)][:size]
    more = len(unique) > size or any(len(page) == size for page in pages)
    token = listing.page_token(ordered[-1].name, ordered[-1].tenant) if more and ordered else ""
    return pb.ListDatabasesResponse(databases=ordered, next_page_token=token)


def merged_census(answers: list) -> pb.CensusResponse:
    """The shards' groups added up per (name, schema hash)."""
    totals: dict[tuple[str, str], list[int]] = {}
    for groups in answers:
        for group in groups:
            total = totals.setdefault((group.name, group.schema_hash), [0, 0])
            total[0] += group.databases
            total[1] += group.bytes
    groups = [pb.CensusGroup(name=name, schema_hash=schema_hash, databases=count, bytes=size)
              for (name, schema_hash), (count, size) in sorted(totals.items())]
    return pb.CensusResponse(groups=groups, databases=sum(g.databases for g in groups),
                             bytes=sum(g.bytes for g in groups))
