"""The Shard service's Forward method: the router's calls multiplexed over long-lived streams.

A stream message costs both ends of a grpc.aio connection a fraction of a unary call, so the
router sends every call as a `Forwarded` message on one of a few streams (loot/router/forward_client.py).
Each message runs concurrently, through the same ShardService code as the unary method it
names; its `Answered` goes back with its call id as soon as it finishes, in any order. Each
call is observed as a call of that method: access log line, metrics, request id.

The cluster secret is checked once, when the stream opens (loot/shard/cluster_auth.py wraps Forward
like every other method). When the shard starts stopping (`drain`), a stream refuses new calls
as UNAVAILABLE (they never ran), lets the running ones finish, then ends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc
from google.protobuf.message import DecodeError, Message

from loot.internal.v1 import shard_pb2
from loot.observability import request_id
from loot.observability.handlers import Observation
from loot.forward_protocol import ACCEPTED, MAX_PAYLOAD
from loot.status import Fault, failure_status, rich_status
from loot.shard.held_requests import HeldRequests

SERVICE = "loot.internal.v1.Shard"
_CODES = {code.value[0]: code for code in grpc.StatusCode}
_END = shard_pb2.Answered(call=0)  # the stream's last message (protos: Forward)
_GARBLED = rich_status(grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED_REQUEST", "a message on the stream is not a Forwarded")
# (request, seconds left before the client's deadline or None, the epoch the router routed it under)
Run = Callable[[Message, float | None, int], Awaitable[Message]]


@dataclass
class Method:
    """A unary Shard method as Forward runs it, observed under the unary method's name."""

    name: str
    request_type: type[Message]
    run: Run

    def __post_init__(self) -> None:
        self.observation = Observation(f"/{SERVICE}/{self.name}")

    def parse(self, request: bytes) -> Message:
        try:
            return self.request_type.FromString(request)
        except DecodeError:
            # The router builds the Context; only the client's request bytes can be malformed.
            public = self.request_type.DESCRIPTOR.fields_by_name["request"].message_type.full_name
            raise Fault(grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED_REQUEST",
                        f"the request is not a valid {public}") from None


def _fitting(response: bytes) -> bytes:
    """`response`, if an Answered can carry it. A safety net: `result_bytes` (at most 48 MiB, rows
    counted as sent) keeps responses well under, but one too big would fail the whole stream."""
    if len(response) > MAX_PAYLOAD:
        raise Fault(grpc.StatusCode.RESOURCE_EXHAUSTED, "RESULT_TOO_LARGE",
                    f"the response takes {len(response)} bytes; a call may return at most {MAX_PAYLOAD}",
                    limit=str(MAX_PAYLOAD))
    return response


class _Stream:
    """One open Forward stream: its calls running, and its one writer (grpc.aio takes one write at a time)."""

    def __init__(self, context: grpc.aio.ServicerContext):
        self.context = context
        self.writing = asyncio.Lock()
        self.running: set[asyncio.Task] = set()
        self.reading = True
        self.draining = False  # the shard is stopping
        self.garbled = False  # a message on it could not be read
        self.ended = asyncio.get_running_loop().create_future()

    def start(self, call: Awaitable[None]) -> None:
        if self.ended.done():  # read after the stream's end was decided: never run (the router knows)
            call.close()
            return
        task = asyncio.create_task(call)
        self.running.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task) -> None:
        self.running.discard(task)
        self.end_if_idle()

    def drain(self) -> None:
        self.draining = True
        self.end_if_idle()

    def end_if_idle(self) -> None:
        """End the stream once nothing runs and no call is to come: the router closed its side, or we stop."""
        if not self.running and (self.draining or not self.reading) and not self.ended.done():
            self.ended.set_result(None)

    async def answer(self, answered: shard_pb2.Answered) -> None:
        try:
            async with self.writing:
                await self.context.write(answered)
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError, RuntimeError):
            pass  # the stream is gone: the router fails the call as one that may have run

    def close(self) -> None:
        for task in self.running:
            task.cancel()


class Forwarding:
    def __init__(self, shard_name: str, methods: dict[int, Method], request_bytes: int = MAX_PAYLOAD):
        self._shard_name = shard_name
        self._methods = methods
        self.held = HeldRequests(request_bytes)  # across every stream (and transactions'): the memory budget counts them
        self._streams: set[_Stream] = set()
        self._draining = False
        self._unknown = Observation(f"/{SERVICE}/Forward")

    async def serve(self, context: grpc.aio.ServicerContext) -> None:
        """Run the stream's calls until the router closes its side, or the shard stops, and every call is answered."""
        await context.send_initial_metadata((ACCEPTED,))  # from here on, calls on it may run
        stream = _Stream(context)
        if self._draining:
            stream.drain()
        self._streams.add(stream)
        reader = asyncio.create_task(self._read(stream))
        try:
            await stream.ended
        except asyncio.CancelledError:  # the stream was cancelled (the router went away, or we stop)
            reader.cancel()
            stream.close()  # its calls are cancelled with it, as a unary call would be
            raise
        finally:
            self._streams.discard(stream)
        if stream.garbled:
            await context.abort_with_status(_GARBLED)
        # Every call read is answered: say so, since how gRPC then ends the call does not (a read still
        # waiting is left to fail as the call ends: cancelling it would end the call INTERNAL).
        await stream.answer(_END)

    def drain(self) -> None:
        """The shard is stopping: refuse new calls, end each stream once its running calls are answered."""
        self._draining = True
        for stream in self._streams:
            stream.drain()

    async def _read(self, stream: _Stream) -> None:
        try:
            while (forwarded := await stream.context.read()) is not grpc.aio.EOF:
                stream.start(self._refuse(stream, forwarded) if stream.draining else self._answer(stream, forwarded))
        except Exception:  # not a Forwarded: no call id to answer, so the stream ends
            stream.garbled = True
        finally:
            stream.reading = False
            stream.end_if_idle()

    async def _answer(self, stream: _Stream, forwarded: shard_pb2.Forwarded) -> None:
        request_id.current.set(request_id.plausible_or_fresh(forwarded.request_id))
        method = self._methods.get(forwarded.method)
        started = time.perf_counter()
        remaining = forwarded.seconds_left or None
        response = None
        try:
            if method is None:
                raise Fault(grpc.StatusCode.INVALID_ARGUMENT, "UNKNOWN_METHOD",
                            f"no Shard method numbered {forwarded.method}")
            # Not cut off at the deadline here: the call keeps to it itself, and answers what it did (a call
            # stopped after its work began might have committed, and must not be answered DEADLINE_EXCEEDED).
            with self.held.hold(len(forwarded.request)):
                response = await method.run(method.parse(forwarded.request), remaining, forwarded.epoch)
            answered = shard_pb2.Answered(call=forwarded.call, response=_fitting(response.SerializeToString()))
            code = grpc.StatusCode.OK
        except Exception as error:
            answered, code = self._failed(forwarded, error)
        (method.observation if method else self._unknown).record(code, started, response)
        await stream.answer(answered)

    async def _refuse(self, stream: _Stream, forwarded: shard_pb2.Forwarded) -> None:
        stopping = Fault(grpc.StatusCode.UNAVAILABLE, "SHARD_UNAVAILABLE",
                         f"shard {self._shard_name} is stopping; retry later", shard=self._shard_name)
        await stream.answer(self._failed(forwarded, stopping)[0])

    @staticmethod
    def _failed(forwarded: shard_pb2.Forwarded, error: Exception) -> tuple[shard_pb2.Answered, grpc.StatusCode]:
        """The answer for a call that raised `error` (a bug is logged, as `guard` logs it)."""
        status = failure_status(error, f"{SERVICE}/Forward")
        return shard_pb2.Answered(call=forwarded.call, error=status.SerializeToString()), _CODES[status.code]
