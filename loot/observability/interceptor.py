"""One server interceptor for routers and shards: request id, access log, metrics.

It wraps each unary Loot method; health checks and reflection pass through
untouched, so probes neither flood the log nor skew the latency figures.
"""

from __future__ import annotations

import asyncio
import logging
import time

import grpc

from loot.observability import request_id
from loot.observability.metrics import LATENCY, REQUESTS, SCHEMA_APPLIES

log = logging.getLogger("loot.access")
_UNOBSERVED = ("/grpc.health.", "/grpc.reflection.")


class ObservabilityInterceptor(grpc.aio.ServerInterceptor):
    async def intercept_service(self, continuation, details: grpc.HandlerCallDetails):
        handler = await continuation(details)
        if handler is None or handler.unary_unary is None or details.method.startswith(_UNOBSERVED):
            return handler
        return grpc.unary_unary_rpc_method_handler(
            _observed(details.method, handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _observed(method: str, behavior):
    async def observed(request, context: grpc.aio.ServicerContext):
        request_id.current.set(request_id.from_metadata(context.invocation_metadata()))
        await context.send_initial_metadata(((request_id.HEADER, request_id.current.get()),))
        started = time.perf_counter()
        code = grpc.StatusCode.UNKNOWN
        try:
            response = await behavior(request, context)
            code = context.code() or grpc.StatusCode.OK
            if getattr(response, "schema_changes", None):
                SCHEMA_APPLIES.inc()
            return response
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        except BaseException:
            code = context.code() or grpc.StatusCode.UNKNOWN
            raise
        finally:
            elapsed = time.perf_counter() - started
            REQUESTS.labels(method, code.name).inc()
            LATENCY.labels(method).observe(elapsed)
            log.info("%s %s", method, code.name, extra={"method": method, "code": code.name,
                                                         "duration_ms": round(elapsed * 1000, 3)})

    return observed
