"""Observation for routers and shards: request id, access log, metrics.

Each server wraps its unary Loot methods with it once, when registering them
(no server interceptor: grpc.aio would run one on every call). Health checks
and reflection are left untouched, so probes neither flood the log nor skew
the latency figures.
"""

from __future__ import annotations

import asyncio
import logging
import time

import grpc

from loot.observability import request_id
from loot.observability.logs import QuickLines
from loot.observability.metrics import LATENCY, REQUESTS, SCHEMA_APPLIES
from loot.serving import with_behavior

log = logging.getLogger("loot.access")
access_lines = QuickLines(log)
_UNOBSERVED = ("/grpc.health.", "/grpc.reflection.")


def observed_handler(method: str, handler: grpc.RpcMethodHandler, return_request_id: bool) -> grpc.RpcMethodHandler:
    """`handler` observed if it is a unary Loot method; health, reflection and streams unchanged.
    For servers that wrap their handlers once, when registering them (loot.serving.add_servicer)."""
    if handler.unary_unary is None or method.startswith(_UNOBSERVED):
        return handler
    return with_behavior(handler, lambda behavior: observed(method, behavior, return_request_id))


class Observation:
    """The accounting of one method's calls: requests by status code, latency, the access log line."""

    def __init__(self, method: str):
        self.method = method
        self._latency = LATENCY.labels(method)
        self._requests: dict[grpc.StatusCode, object] = {}  # the counter per status code, looked up once

    def record(self, code: grpc.StatusCode, started: float, response=None) -> None:
        """One call that started at `started` (perf_counter) ended with `code` (and `response`)."""
        elapsed = time.perf_counter() - started
        if getattr(response, "schema_changes", None):
            SCHEMA_APPLIES.inc()
        counter = self._requests.get(code) or self._requests.setdefault(code, REQUESTS.labels(self.method, code.name))
        counter.inc()
        self._latency.observe(elapsed)
        if log.isEnabledFor(logging.INFO):  # `--log-level warning`: no per-call logging work at all
            access_lines.info("call", {"method": self.method, "code": code.name, "duration_ms": round(elapsed * 1000, 3)})


def observed(method: str, behavior, return_request_id: bool):
    """`behavior` (a unary method's coroutine function) observed."""
    observation = Observation(method)

    async def observed(request, context: grpc.aio.ServicerContext):
        call_id = request_id.from_metadata(context.invocation_metadata())
        request_id.current.set(call_id)
        if return_request_id:  # with the status, errors included (loot.status.abort keeps it)
            context.set_trailing_metadata(((request_id.HEADER, call_id),))
        started = time.perf_counter()
        code, response = grpc.StatusCode.UNKNOWN, None
        try:
            response = await behavior(request, context)
            code = context.code() or grpc.StatusCode.OK
            return response
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        except BaseException:
            code = context.code() or grpc.StatusCode.UNKNOWN
            raise
        finally:
            observation.record(code, started, response)

    return observed
