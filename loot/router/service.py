"""The public loot.v1.Database service: verify, route, forward the call's bytes.

The router parses neither requests nor responses: the client's request bytes go to the
shard inside the shard request (loot/router/envelope.py) and the shard's response bytes come
back untouched. One serialization per hop, by the client and by the shard.
"""

from __future__ import annotations

import asyncio

import grpc
from google.rpc import status_pb2
from grpc_status import rpc_status

from loot.internal.v1 import shard_pb2
from loot.membership import parse_epoch
from loot.observability import request_id
from loot.observability.handlers import observed
from loot.serving import register
from loot.status import Fault, abort, guard, status_info
from loot.tokens.cache import VerifiedTokens
from loot.router.admission import Admission
from loot.router.allowlist import Allowlist
from loot.router.auth import admit_call
from loot.router.rate_limits import RateLimits
from loot.router.envelope import shard_request
from loot.router.shards import Shards
from loot.router.forward_client import InDoubt, NotSent, Refused
from loot.router import transaction_forward

SERVICE = "loot.v1.Database"
# When a stopping router answers the calls still running itself, as a share of its shutdown grace: before
# gRPC cuts them off at the end of it with UNAVAILABLE, which would say that nothing was applied.
GIVE_UP_AT = 0.9
# Each public method and the shard method it is forwarded to.
SHARD_METHODS = {"Execute": shard_pb2.FORWARDED_METHOD_EXECUTE, "Batch": shard_pb2.FORWARDED_METHOD_BATCH,
                 "Describe": shard_pb2.FORWARDED_METHOD_DESCRIBE}


class DatabaseService:
    def __init__(self, shards: Shards, forward_timeout: float, tokens: VerifiedTokens[Admission],
                 accounts: Allowlist, limits: RateLimits | None):
        self.shards = shards
        self.forward_timeout = forward_timeout
        self.tokens = tokens
        self.accounts = accounts
        self.limits = limits
        self.in_flight = 0  # admitted calls not yet answered (loot_router_calls_in_flight)
        self._running: set[asyncio.Task] = set()
        self._gave_up = False

    def add_to(self, server: grpc.aio.Server) -> dict[str, grpc.RpcMethodHandler]:
        """Serve the methods, observed, taking and returning serialized messages; return their handlers
        (which the HTTP port serves too: loot/http/)."""
        handlers = {method: grpc.unary_unary_rpc_method_handler(
            observed(f"/{SERVICE}/{method}", getattr(self, method), return_request_id=True))
            for method in SHARD_METHODS}
        handlers["Transaction"] = grpc.stream_stream_rpc_method_handler(
            observed(f"/{SERVICE}/Transaction", self.Transaction, return_request_id=True))
        register(server, SERVICE, handlers)
        return handlers

    @guard
    async def Execute(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return await self._forward("Execute", request, context)

    @guard
    async def Batch(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return await self._forward("Batch", request, context)

    @guard
    async def Describe(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return await self._forward("Describe", request, context)

    @guard
    async def Transaction(self, requests, context: grpc.aio.ServicerContext) -> None:
        """Forwarded on a stream of its own (loot/router/transaction_forward.py)."""
        admission = self._admit(context)
        task = asyncio.current_task()
        self._running.add(task)
        self.in_flight += 1
        try:
            await transaction_forward.forward(context, admission.context_field, admission.database_id, self.shards,
                                              self._corrected_by)
        except asyncio.CancelledError:
            if not self._gave_up:
                raise
            task.uncancel()  # the shard rolls back what has not committed; a commit under way may have
            raise Fault(grpc.StatusCode.UNKNOWN, "OUTCOME_UNKNOWN", "the router stopped during the transaction: "
                        "it may or may not have been applied; read before retrying") from None
        finally:
            self.in_flight -= 1
            self._running.discard(task)

    def stopping(self, grace: float) -> None:
        """The router stops: calls still running near the end of `grace` seconds are answered OUTCOME_UNKNOWN."""
        asyncio.get_running_loop().call_later(grace * GIVE_UP_AT, self._give_up)

    def _give_up(self) -> None:
        self._gave_up = True
        for task in self._running:
            task.cancel()

    async def _forward(self, method: str, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        admission = self._admit(context)
        task = asyncio.current_task()
        self._running.add(task)
        self.in_flight += 1
        try:
            return await self._route(method, admission, request, context)
        except asyncio.CancelledError:
            if not self._gave_up:
                raise
            task.uncancel()
            # The call may be running on its shard, which goes on without us.
            raise Fault(grpc.StatusCode.UNKNOWN, "OUTCOME_UNKNOWN", "the router stopped while the call was "
                        "forwarded: it may or may not have been applied; read before retrying a write") from None
        finally:
            self.in_flight -= 1
            self._running.discard(task)

    def _admit(self, context: grpc.aio.ServicerContext) -> Admission:
        return admit_call(context, self.tokens, self.accounts, self.limits, account_methods=False)

    async def _route(self, method: str, admission: Admission, request: bytes,
                     context: grpc.aio.ServicerContext) -> bytes:
        message = shard_request(admission.context_field, request)
        for first_attempt in (True, False):
            name, shard, routed_under = self.shards.for_database(admission.database_id)
            try:
                return await shard.call(SHARD_METHODS[method], message, self._timeout(context), routed_under,
                                        request_id.current.get())
            except Refused as refused:
                if first_attempt and self._corrected_by(refused.status, routed_under):
                    continue  # the shard never ran it; once more under the membership it pointed to
                await abort(context, rpc_status.to_status(refused.status))  # the shard's own answer, unchanged
            except TimeoutError:
                raise Fault(grpc.StatusCode.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED",
                            f"the deadline passed before the call reached shard {name}; nothing was applied",
                            shard=name) from None
            except InDoubt as lost:
                # Not UNAVAILABLE nor DEADLINE_EXCEEDED, which promise nothing was applied: the call was running.
                raise Fault(grpc.StatusCode.UNKNOWN, "OUTCOME_UNKNOWN",
                            f"shard {name} did not answer the call it was running ({lost}): it may or may not "
                            "have been applied; read before retrying a write", shard=name) from None
            except NotSent as lost:
                raise Fault(grpc.StatusCode.UNAVAILABLE, "SHARD_UNAVAILABLE",
                            f"shard {name} is unreachable ({lost}); retry later", shard=name) from None

    def _timeout(self, context: grpc.aio.ServicerContext) -> float:
        remaining = context.time_remaining()
        return self.forward_timeout if remaining is None else min(remaining, self.forward_timeout)

    def _corrected_by(self, status: status_pb2.Status, routed_under: int) -> bool:
        """A WRONG_SHARD refusal from a shard under a newer epoch than the call was routed under:
        reload our membership now, without waiting for the next poll. True when we are now past
        that epoch (by this reload, or by one while the call was in flight)."""
        info = status_info(status)
        if info is None or info.reason != "WRONG_SHARD":
            return False
        if parse_epoch(info.metadata.get("epoch", "")) <= routed_under:
            return False
        self.shards.source.reload()
        return self.shards.epoch > routed_under

