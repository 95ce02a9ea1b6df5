"""Only the cluster may call a shard: every call carries the cluster secret.

The check wraps each of the shard's handlers once, when they are registered
(`ClusterSecret.guard`), rather than running as a server interceptor, which
grpc.aio would run on every call before looking the handler up. Health checks
are not wrapped, so orchestrators can probe shards without the secret.
"""

from __future__ import annotations

import hmac
import inspect

import grpc

from loot.secret import SECRET_HEADER
from loot.serving import with_behavior
from loot.status import rich_status

_REFUSAL = rich_status(grpc.StatusCode.UNAUTHENTICATED, "CLUSTER_SECRET", "shards serve only the cluster's routers")


class ClusterSecret:
    def __init__(self, *secrets: str):
        self._secrets = [secret.encode() for secret in secrets]

    def guard(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """`handler` (of any kind) refusing, before anything else, a call without an accepted secret."""
        return with_behavior(handler, self._guarded)

    def _guarded(self, behavior):
        if inspect.isasyncgenfunction(behavior):  # a streaming servicer method that yields (reflection)
            async def guarded_stream(request, context: grpc.aio.ServicerContext):
                await self._refuse_without_secret(context)
                async for response in behavior(request, context):
                    yield response
            return guarded_stream

        async def guarded(request, context: grpc.aio.ServicerContext):
            await self._refuse_without_secret(context)
            return await behavior(request, context)
        return guarded

    async def _refuse_without_secret(self, context: grpc.aio.ServicerContext) -> None:
        if not self.carried_by(context.invocation_metadata()):
            await context.abort_with_status(_REFUSAL)

    def carried_by(self, metadata) -> bool:
        presented = next((value for key, value in metadata or () if key == SECRET_HEADER), "")
        if isinstance(presented, str):
            presented = presented.encode()
        # Compare with every accepted secret, not stopping at a match: the time taken says nothing.
        return sum(hmac.compare_digest(presented, secret) for secret in self._secrets) > 0
