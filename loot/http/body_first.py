"""Read a request's body to its end before answering it, as every HTTP/2 stream should.

Refusals (CORS, an unknown path, a content type not served, a bad header) answer before the body is
read. Hypercorn's HTTP/2 then breaks the whole connection, every stream on it, when the rest of the body
arrives for a stream it has closed (a KeyError in its h2 protocol). So what is left of the body is read
and dropped first, up to gRPC's message bound; past that the connection is let go.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loot.grpc_options import MAX_MESSAGE
from loot.http.cors import App


def body_first(app: App, limit: int = MAX_MESSAGE) -> App:
    """`app`, whose answers wait for the end of the request's body."""

    async def reading_first(scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await app(scope, receive, send)
        done = False

        async def receiving() -> dict:
            nonlocal done
            message = await receive()
            done = done or message["type"] != "http.request" or not message.get("more_body", False)
            return message

        async def sending(message: dict) -> None:
            if message["type"] == "http.response.start":
                dropped = 0
                while not done and dropped <= limit:
                    dropped += len((await receiving()).get("body", b""))
            await send(message)

        await app(scope, receiving, sending)

    return reading_first
