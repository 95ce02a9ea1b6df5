"""Only the cluster may call a shard: every call carries the cluster secret.

Health checks are exempt, so orchestrators can probe shards without the secret.
"""

from __future__ import annotations

import hmac

import grpc
from grpc_health.v1 import health

from loot.secret import SECRET_HEADER
from loot.status import rich_status

_EXEMPT = f"/{health.SERVICE_NAME}/"


class ClusterSecretInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, *secrets: str):
        self._secrets = [secret.encode() for secret in secrets]
        self._refuse = grpc.unary_unary_rpc_method_handler(self._refused)

    async def intercept_service(self, continuation, details: grpc.HandlerCallDetails):
        if details.method.startswith(_EXEMPT) or self._carries_secret(details.invocation_metadata):
            return await continuation(details)
        return self._refuse

    def _carries_secret(self, metadata) -> bool:
        presented = next((value for key, value in metadata or () if key == SECRET_HEADER), "")
        if isinstance(presented, str):
            presented = presented.encode()
        # Compare with every accepted secret, not stopping at a match: the time taken says nothing.
        return sum(hmac.compare_digest(presented, secret) for secret in self._secrets) > 0

    @staticmethod
    async def _refused(request, context: grpc.aio.ServicerContext):
        await context.abort_with_status(
            rich_status(grpc.StatusCode.UNAUTHENTICATED, "CLUSTER_SECRET", "shards serve only the cluster's routers")
        )
