"""The router's calls to one shard, multiplexed over a few long-lived Forward streams.

A grpc.aio unary call costs each end several times what a message on an open stream does, so
the router sends each call as a `Forwarded` message (protos/loot/internal/v1/shard.proto) on
one of `width` streams, taken in turn, and a reader task per stream resolves the waiting call
by its call id. Streams open lazily, carrying the cluster secret once, and are opened again
after one breaks (the shard restarted). Several streams, so that one large answer being
transferred does not hold up every other answer behind it.

A call is written only once the shard took the stream (its initial metadata says so). A call that
was not written never ran, and is sent once more, on the next stream, once the channel is connected
(a restarted shard: its channel may still be in reconnection backoff) or half its time has passed (then
fails as `NotSent`); so
is one left unanswered when the shard ends the stream with its last message (call id 0), which it
sends only once every call it read is answered (a stopping shard). A call written on a stream that
then breaks may have run: it fails as `InDoubt`, and is never sent again.

A write is never cancelled with its caller (deadline, client gone): grpc.aio would cancel the whole
stream, and with it every other call on it. The message goes out; its answer is dropped.

The shard gets the call's deadline less ANSWER_RESERVE, so that its answer — DEADLINE_EXCEEDED, rolled
back, when it could not finish — usually arrives before ours. A call written and still unanswered at our
deadline may have been applied: InDoubt (OUTCOME_UNKNOWN), never DEADLINE_EXCEEDED, which promises nothing was.
"""

from __future__ import annotations

import asyncio
import itertools

import grpc
from google.rpc import status_pb2
from grpc_status import rpc_status

from loot.internal.v1 import shard_pb2
from loot.forward_protocol import ACCEPTED, MAX_PAYLOAD
from loot.status import Fault

FORWARD = "/loot.internal.v1.Shard/Forward"
# At most this long, a call not sent waits for its shard's channel to reconnect: longer than the largest
# reconnection backoff (loot/router/shards.py).
RECONNECT_WAIT = 2.0
# Of the seconds left, the part kept for the shard's answer to travel back: at most this, at most a fifth.
ANSWER_RESERVE = 0.1


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
        # Done once the shard took the stream (loot.forward_protocol.ACCEPTED): no call is written before,
        # so a stream that fails unaccepted ran nothing, and every call written may have run.
        self._accepted = asyncio.get_running_loop().create_future()
        self.open = True
        self._reader = asyncio.create_task(self._read())

    async def exchange(self, forwarded: shard_pb2.Forwarded, deadline: float) -> shard_pb2.Answered:
        """Write the call and wait for its Answered. Raises NotSent, InDoubt or Refused."""
        # Raises NotSent or Refused if it was never taken. Shielded: a caller giving up must not cancel it.
        await asyncio.shield(self._accepted)
        if not self.open:  # taken, then ended
            raise NotSent("the stream is closed")
        answer = self._waiting[forwarded.call] = asyncio.get_running_loop().create_future()
        try:
            failure = await asyncio.shield(self._write(forwarded, deadline))
            if failure is not None:
                raise NotSent(failure)
            return await answer
        finally:
            self._waiting.pop(forwarded.call, None)  # answered, failed, or the caller stopped waiting
            _seen(answer)  # a break that failed it before its write made it a NotSent instead

    async def _write(self, forwarded: shard_pb2.Forwarded, deadline: float) -> str | None:
        """None once written; else why not (the stream is broken, or the caller gave up waiting its turn)."""
        try:
            async with self._writing:
                seconds_left = deadline - asyncio.get_running_loop().time()
                if forwarded.call not in self._waiting or seconds_left <= 0 or not self.open:
                    return "not written: the caller gave up or the stream closed before its turn"
                # The shard's clock starts when it reads the call; set only as it is written (see `call`).
                forwarded.seconds_left = seconds_left - min(ANSWER_RESERVE, seconds_left / 5)
                await self._call.write(forwarded)
            return None
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError, asyncio.CancelledError) as error:
            # Cancelled only with the stream itself (shielded from its caller): not written either.
            forwarded.ClearField("seconds_left")
            self.open = False
            return type(error).__name__

    async def _read(self) -> None:
        failure: Exception = InDoubt("the stream ended without its last message")
        try:
            if ACCEPTED in tuple(await self._call.initial_metadata()):
                self._accepted.set_result(None)
            while (answered := await self._call.read()) is not grpc.aio.EOF:
                if answered.call == 0:  # the shard's last message: it answered every call it read
                    failure = NotSent("the shard ended the stream before reading the call")
                    break
                answer = self._waiting.pop(answered.call, None)
                if answer is not None and not answer.done():
                    answer.set_result(answered)
        except grpc.aio.AioRpcError as error:
            failure = _failure(error)
        finally:
            self.open = False
            if not self._accepted.done():  # nothing was written on it
                refused = isinstance(failure, Refused)
                self._accepted.set_exception(failure if refused else NotSent("the shard did not take the stream"))
                _seen(self._accepted)
            for answer in self._waiting.values():
                if not answer.done():
                    answer.set_exception(failure)
            self._waiting.clear()

    def close(self) -> None:
        self._call.cancel()


async def reconnected(channel: grpc.aio.Channel, seconds_left: float | None) -> None:
    """Wait until a reconnecting channel is ready: at most RECONNECT_WAIT, or half the call's time left, so a
    shard that stays down is still reported as down (UNAVAILABLE), not as a deadline passed."""
    limit = RECONNECT_WAIT if seconds_left is None else min(RECONNECT_WAIT, seconds_left / 2)
    try:
        await asyncio.wait_for(channel.channel_ready(), limit)
    except TimeoutError:
        pass  # the second attempt fails, and says the shard is unreachable


def _seen(future: asyncio.Future) -> None:
    """Mark a failed future's exception as retrieved (asyncio logs those never retrieved)."""
    if future.done() and not future.cancelled():
        future.exception()


def _failure(error: grpc.aio.AioRpcError) -> Exception:
    """What a broken stream means for the calls written on it and unanswered (a stream never taken
    has none: its callers, still waiting for it to be taken, are told NotSent instead)."""
    status = rpc_status.from_call(error)  # a refused stream (no cluster secret) says why
    return Refused(status) if status is not None else InDoubt(error.code().name)


def _too_large(size: int) -> status_pb2.Status:
    return Fault(grpc.StatusCode.RESOURCE_EXHAUSTED, "REQUEST_TOO_LARGE",
                 f"the request and its token's context take {size} bytes; a call may carry at most {MAX_PAYLOAD}",
                 limit=str(MAX_PAYLOAD)).status_message()


class ShardStreams:
    def __init__(self, channel: grpc.aio.Channel, secret: tuple[str, str], width: int):
        self._channel = channel
        self._open_stream = channel.stream_stream(FORWARD, request_serializer=shard_pb2.Forwarded.SerializeToString,
                                                  response_deserializer=shard_pb2.Answered.FromString,
                                                  _registered_method=True)
        self._metadata = (secret,)
        self._streams: list[_Stream | None] = [None] * width
        self._turn = itertools.cycle(range(width))
        self._ids = itertools.count(1)

    async def call(self, method: int, request: bytes, timeout: float, epoch: int, call_request_id: str) -> bytes:
        """The shard's response bytes. Raises Refused (the shard's status, or REQUEST_TOO_LARGE),
        InDoubt (written, then no answer: the stream broke or the deadline passed), NotSent or TimeoutError
        (the deadline passed before the call was written)."""
        if len(request) > MAX_PAYLOAD:
            raise Refused(_too_large(len(request)))
        forwarded = shard_pb2.Forwarded(call=next(self._ids), method=method, request=request, epoch=epoch,
                                        request_id=call_request_id)
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            async with asyncio.timeout_at(deadline):
                try:
                    answered = await self._stream().exchange(forwarded, deadline)
                except NotSent:
                    await reconnected(self._channel, deadline - asyncio.get_running_loop().time())
                    answered = await self._stream().exchange(forwarded, deadline)  # the next (a broken one is replaced)
        except TimeoutError:
            if forwarded.seconds_left:  # written: the shard may be committing it right now
                raise InDoubt("no answer before the deadline") from None
            raise
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
