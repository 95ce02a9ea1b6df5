"""The router's calls to one shard, multiplexed over a few long-lived Forward streams.

A grpc.aio unary call costs each end several times what a message on an open stream does, so
the router sends each call as a `Forwarded` message (protos/loot/internal/v1/shard.proto) on
one of `width` streams, taken in turn, and a reader task per stream resolves the waiting call
by its call id. Streams open lazily, carrying the cluster secret once, and are opened again
after one breaks (the shard restarted). Several streams, so that one large answer being
transferred does not hold up every other answer behind it.

A call whose message could not be written never ran, and is sent again on a fresh stream once
(then fails as `NotSent`). A call written on a stream that then ends or breaks may have run: it
fails as `InDoubt`, and is never sent again.
"""

from __future__ import annotations

import asyncio
import itertools

import grpc
from google.rpc import status_pb2
from grpc_status import rpc_status

from loot.internal.v1 import shard_pb2

FORWARD = "/loot.internal.v1.Shard/Forward"


class Refused(Exception):
    """The shard answered the call with this status (or refused the stream with it)."""

    def __init__(self, status: status_pb2.Status):
        super().__init__(status.message)
        self.status = status


class InDoubt(Exception):
    """The stream broke or ended before the call was answered: it may have run."""


class NotSent(Exception):
    """The stream was already broken: the call's message never left."""


class _Stream:
    def __init__(self, call: grpc.aio.StreamStreamCall):
        self._call = call
        self._waiting: dict[int, asyncio.Future] = {}  # call id -> its answer
        self._writing = asyncio.Lock()  # grpc.aio takes one write at a time
        self.open = True
        self._reader = asyncio.create_task(self._read())

    async def send(self, forwarded: shard_pb2.Forwarded) -> asyncio.Future:
        """Write the call; its Answered resolves the returned future (or InDoubt, Refused)."""
        if not self.open:
            raise NotSent("the stream is closed")
        answer = self._waiting[forwarded.call] = asyncio.get_running_loop().create_future()
        try:
            async with self._writing:
                await self._call.write(forwarded)
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError) as error:
            self.open = False
            self._waiting.pop(forwarded.call, None)
            raise NotSent(type(error).__name__) from None
        return answer

    def forget(self, call: int) -> None:
        """The caller stopped waiting (deadline, cancellation): drop its answer when it comes."""
        self._waiting.pop(call, None)

    async def _read(self) -> None:
        failure: Exception = InDoubt("the stream ended")
        try:
            while (answered := await self._call.read()) is not grpc.aio.EOF:
                answer = self._waiting.pop(answered.call, None)
                if answer is not None and not answer.done():
                    answer.set_result(answered)
        except grpc.aio.AioRpcError as error:
            status = rpc_status.from_call(error)  # a refused stream (no cluster secret) says why
            failure = Refused(status) if status is not None else InDoubt(error.code().name)
        finally:
            self.open = False
            for answer in self._waiting.values():
                if not answer.done():
                    answer.set_exception(failure)
            self._waiting.clear()

    def close(self) -> None:
        self._call.cancel()


class ShardStreams:
    def __init__(self, channel: grpc.aio.Channel, secret: tuple[str, str], width: int):
        self._open_stream = channel.stream_stream(FORWARD, request_serializer=shard_pb2.Forwarded.SerializeToString,
                                                  response_deserializer=shard_pb2.Answered.FromString,
                                                  _registered_method=True)
        self._metadata = (secret,)
        self._streams: list[_Stream | None] = [None] * width
        self._turn = itertools.cycle(range(width))
        self._ids = itertools.count(1)

    async def call(self, method: int, request: bytes, timeout: float, epoch: int, call_request_id: str) -> bytes:
        """The shard's response bytes. Raises Refused (the shard's status), InDoubt, NotSent or TimeoutError."""
        forwarded = shard_pb2.Forwarded(call=next(self._ids), method=method, request=request,
                                        seconds_left=max(timeout, 1e-3), epoch=epoch, request_id=call_request_id)
        stream = self._stream()
        try:
            async with asyncio.timeout(timeout):
                try:
                    answer = await stream.send(forwarded)
                except NotSent:
                    stream = self._stream()  # a fresh one in place of the broken one
                    answer = await stream.send(forwarded)
                answered = await answer
        finally:
            stream.forget(forwarded.call)
        if answered.WhichOneof("outcome") == "error":
            raise Refused(status_pb2.Status.FromString(answered.error))
        return answered.response

    def _stream(self) -> _Stream:
        turn = next(self._turn)
        stream = self._streams[turn]
        if stream is None or not stream.open:
            stream = self._streams[turn] = _Stream(self._open_stream(metadata=self._metadata))
        return stream

    def close(self) -> None:
        for stream in self._streams:
            if stream is not None:
                stream.close()
