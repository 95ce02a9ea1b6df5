"""Answers the HTTP layer writes itself, before or instead of a call."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

Headers = Sequence[tuple[bytes, bytes]]


async def respond(send: Callable, status: int, headers: Headers, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": list(headers)})
    await send({"type": "http.response.body", "body": body})


async def refuse(send: Callable, status: int, code: str, message: str, headers: Headers = ()) -> None:
    """A refusal as a Connect error body, which Connect clients read whatever the HTTP status."""
    body = json.dumps({"code": code, "message": message}).encode()
    await respond(send, status, [(b"content-type", b"application/json"), *headers], body)
