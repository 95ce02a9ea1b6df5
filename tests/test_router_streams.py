"""loot/router/forward_client.py against a real Forwarding (loot/shard/forward_server.py) behind a real grpc.aio server on
loopback: one call's trouble stays that call's, and a call that never ran is never reported as one
that may have."""

from __future__ import annotations

import asyncio
import collections

import grpc
import pytest

from loot.internal.v1 import shard_pb2
from loot.grpc_options import MAX_MESSAGE
from loot.serving import SERVER_OPTIONS
from loot.status import status_info
from loot.router.shards import CHANNEL_OPTIONS
from loot.router.forward_client import InDoubt, NotSent, Refused, ShardStreams
from loot.shard.forward_server import Forwarding, Method

EXECUTE = shard_pb2.FORWARDED_METHOD_EXECUTE


class Shard:
    """A Forward server whose Execute sleeps `seconds`, counting the calls it ran."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.ran = 0
        self.forwarding = Forwarding("s", {EXECUTE: Method("Execute", shard_pb2.ShardExecuteRequest, self._execute)})

    async def _execute(self, request, remaining, epoch) -> shard_pb2.OwnedResponse:
        self.ran += 1
        await asyncio.sleep(self.seconds)
        return shard_pb2.OwnedResponse(database_ids=["done"])

    async def start(self) -> ShardStreams:
        async def forward(requests, context):
            await self.forwarding.serve(context)

        self.server = grpc.aio.server(options=SERVER_OPTIONS)
        handler = grpc.stream_stream_rpc_method_handler(forward, request_deserializer=shard_pb2.Forwarded.FromString,
                                                        response_serializer=shard_pb2.Answered.SerializeToString)
        self.server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("loot.internal.v1.Shard",
                                                                                   {"Forward": handler})])
        port = self.server.add_insecure_port("127.0.0.1:0")
        await self.server.start()
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=CHANNEL_OPTIONS)
        return ShardStreams(self.channel, ("loot-cluster-secret", "unused here"), 2)

    async def stop(self) -> None:
        await self.channel.close()
        await self.server.stop(None)


async def outcome(call) -> str:
    try:
        await call
        return "answered"
    except (Refused, InDoubt, NotSent, TimeoutError) as error:
        return type(error).__name__


def test_a_callers_deadline_during_its_write_leaves_the_other_calls_on_the_stream_alone() -> None:
    async def scenario() -> tuple[str, str]:
        shard = Shard(seconds=0.5)
        streams = await shard.start()
        try:
            running = asyncio.create_task(outcome(streams.call(EXECUTE, b"", 5.0, 1, "a")))
            await asyncio.sleep(0.2)  # running on the shard
            # 2 MiB cannot be written in 2 ms: the deadline lands mid-write. grpc.aio cancels a whole
            # stream whose write is cancelled, so the write must not be cancelled with its caller.
            for _ in range(2):  # both streams; written (in doubt) or not, as the deadline fell
                assert await outcome(streams.call(EXECUTE, b"\x12" + bytes(2 << 20), 0.002, 1, "b")) in (
                    "InDoubt", "TimeoutError")
            return await running, await outcome(streams.call(EXECUTE, b"", 5.0, 1, "c"))
        finally:
            await shard.stop()

    assert asyncio.run(scenario()) == ("answered", "answered")


def test_a_request_too_large_for_a_stream_is_refused_alone_and_never_sent() -> None:
    async def scenario() -> tuple[Refused, list[str], int]:
        shard = Shard(seconds=0.3)
        streams = await shard.start()
        try:
            running = [asyncio.create_task(outcome(streams.call(EXECUTE, b"", 5.0, 1, "a"))) for _ in range(2)]
            await asyncio.sleep(0.1)
            with pytest.raises(Refused) as refused:
                await streams.call(EXECUTE, bytes(MAX_MESSAGE), 5.0, 1, "b")
            return refused.value, [await call for call in running], shard.ran
        finally:
            await shard.stop()

    refused, others, ran = asyncio.run(scenario())
    assert refused.status.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    assert status_info(refused.status).reason == "REQUEST_TOO_LARGE"
    assert others == ["answered", "answered"] and ran == 2


def test_calls_a_stopping_shard_never_read_are_not_sent_not_in_doubt() -> None:
    async def scenario() -> tuple[collections.Counter, int]:
        shard = Shard(seconds=0.05)
        streams = await shard.start()
        try:
            await asyncio.gather(*(streams.call(EXECUTE, b"", 2.0, 1, "open") for _ in range(2)))
            before = shard.ran
            calls = [asyncio.create_task(outcome(streams.call(EXECUTE, b"", 2.0, 1, "a"))) for _ in range(20)]
            await asyncio.sleep(0)  # their writes start
            shard.forwarding.drain()  # as SIGTERM does: idle streams end cleanly at once
            stopping = asyncio.create_task(shard.server.stop(3))
            outcomes = collections.Counter([await call for call in calls])
            await stopping
            return outcomes, shard.ran - before
        finally:
            await shard.stop()

    outcomes, ran = asyncio.run(scenario())
    # A call the shard read is answered before the stream ends; one it never read must not be
    # reported as possibly applied (the router answers it UNAVAILABLE, safe to retry).
    assert outcomes["InDoubt"] == 0, outcomes
    assert outcomes["answered"] == ran


def test_a_call_whose_caller_gave_up_before_its_turn_to_write_is_never_run() -> None:
    async def scenario() -> tuple[str, list[bytes]]:
        shard = Shard(seconds=0.01)
        ran: list[bytes] = []
        execute = shard.forwarding._methods[EXECUTE]
        counted = execute.run

        async def recording(request, remaining, epoch):
            ran.append(request.SerializeToString())
            return await counted(request, remaining, epoch)

        execute.run = recording
        streams = await shard.start()
        try:
            await asyncio.gather(*(streams.call(EXECUTE, b"", 2.0, 1, "open") for _ in range(2)))
            ran.clear()
            big = asyncio.create_task(outcome(streams.call(EXECUTE, b"\x12" + bytes(60 << 20), 20.0, 1, "big")))
            await asyncio.sleep(0)
            other = asyncio.create_task(outcome(streams.call(EXECUTE, b"", 2.0, 1, "other")))  # the other stream
            # Behind the big write on the first stream: its 50 ms pass while it waits its turn.
            late = await outcome(streams.call(EXECUTE, b"\x0a\x00", 0.05, 1, "late"))
            await big, await other
            await asyncio.sleep(0.3)  # time for the shard to run it, were it sent
            return late, ran
        finally:
            await shard.stop()

    late, ran = asyncio.run(scenario())
    assert late == "TimeoutError"
    assert b"\x0a\x00" not in ran, "the shard ran a call after its caller was told DEADLINE_EXCEEDED"
