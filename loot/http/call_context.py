"""What a servicer method sees of an HTTP call: the subset of grpc.aio.ServicerContext that Loot's
handlers use, read from the request's headers and deadline, keeping what the handler sets for the reply."""

from __future__ import annotations

import base64
import time
from collections.abc import Sequence

import grpc

Metadata = tuple[tuple[str, str | bytes], ...]


def metadata_from_headers(headers: Sequence[tuple[str, str]]) -> Metadata:
    """HTTP headers as gRPC metadata: `-bin` values base64-decoded as gRPC does; unreadable ones dropped
    (gRPC would not have delivered them either)."""
    metadata: list[tuple[str, str | bytes]] = []
    for key, value in headers:
        key = key.lower()
        if key.endswith("-bin"):
            try:
                metadata.append((key, base64.b64decode(value + "=" * (-len(value) % 4), validate=True)))
            except ValueError:
                continue
        else:
            metadata.append((key, value))
    return tuple(metadata)


class HttpCallContext:
    """Stands in for grpc.aio.ServicerContext on one HTTP call."""

    def __init__(self, metadata: Metadata, deadline: float | None):
        self._metadata = metadata
        self._deadline = deadline  # time.monotonic(), or None without a Connect-Timeout-Ms
        self._trailing: Metadata = ()
        self._code: grpc.StatusCode | None = None
        self.details = ""

    def invocation_metadata(self) -> Metadata:
        return self._metadata

    def time_remaining(self) -> float | None:
        return None if self._deadline is None else max(0.0, self._deadline - time.monotonic())

    def set_trailing_metadata(self, metadata: Metadata) -> None:
        self._trailing = tuple(metadata)

    def trailing_metadata(self) -> Metadata:
        return self._trailing

    def code(self) -> grpc.StatusCode | None:
        return self._code

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata: Metadata = ()) -> None:
        """End the call with `code`: as in grpc.aio, by raising AbortError, which the caller turns into the answer."""
        self._code, self.details = code, details
        if trailing_metadata:
            self._trailing = tuple(trailing_metadata)
        raise grpc.aio.AbortError()
