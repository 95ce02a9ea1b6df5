"""The public loot.v1.Database service: verify, route, forward the call's bytes.

The router parses neither requests nor responses: the client's request bytes go to the
shard inside the shard request (loot/router/envelope.py) and the shard's response bytes come
back untouched. One serialization per hop, by the client and by the shard.
"""

from __future__ import annotations

import grpc
from google.rpc import status_pb2
from grpc_status import rpc_status

from loot.internal.v1 import shard_pb2
from loot.membership import parse_epoch
from loot.observability import request_id
from loot.observability.handlers import observed
from loot.serving import register
from loot.status import Fault, abort, guard, status_info
from loot.router.admission import Admission
from loot.router.allowlist import Allowlist
from loot.router.auth import authenticate
from loot.router.rate_limits import RateLimits
from loot.router.envelope import shard_request
from loot.router.shards import Shards
from loot.router.forward_client import InDoubt, NotSent, Refused

SERVICE = "loot.v1.Database"
# Each public method and the shard method it is forwarded to.
SHARD_METHODS = {"Execute": shard_pb2.FORWARDED_METHOD_EXECUTE, "Batch": shard_pb2.FORWARDED_METHOD_BATCH,
                 "Describe": shard_pb2.FORWARDED_METHOD_DESCRIBE}


class DatabaseService:
    def __init__(self, shards: Shards, forward_timeout: float, accounts: Allowlist, limits: RateLimits | None):
        self.shards = shards
        self.forward_timeout = forward_timeout
        self.accounts = accounts
        self.limits = limits
        self.in_flight = 0  # admitted calls not yet answered (loot_router_calls_in_flight)

    def add_to(self, server: grpc.aio.Server) -> None:
        """Serve the methods, observed, taking and returning serialized messages."""
        register(server, SERVICE, {method: grpc.unary_unary_rpc_method_handler(
            observed(f"/{SERVICE}/{method}", getattr(self, method), return_request_id=True))
            for method in SHARD_METHODS})

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
        self.accounts.check(admission.claims)  # every call: a reload applies to the next one
        if self.limits is not None:
            self.limits.take(admission.claims.account)
        self.in_flight += 1
        try:
            return await self._route(method, admission, request, context)
        finally:
            self.in_flight -= 1

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
                            f"shard {name} did not answer before the deadline", shard=name) from None
            except InDoubt as lost:
                # Not UNAVAILABLE, which promises nothing was applied (SPEC §7): the call was running.
                raise Fault(grpc.StatusCode.UNKNOWN, "OUTCOME_UNKNOWN",
                            f"shard {name} went away while running the call ({lost}): it may or may not "
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

