"""The bytes of forwarded requests a shard holds at once, waiting for their database or running
(`--request-bytes`): the queues bound how many requests wait, but each may be 64 MiB."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import grpc

from loot.status import Fault


class HeldRequests:
    """Counted on the event loop only (Forward's calls), so no lock."""

    def __init__(self, limit: int):
        self.limit = limit
        self.bytes = 0

    @contextlib.contextmanager
    def hold(self, size: int) -> Iterator[None]:
        """Hold a request of `size` bytes while the block runs, or refuse it."""
        if size > self.limit:
            raise Fault(grpc.StatusCode.RESOURCE_EXHAUSTED, "REQUEST_TOO_LARGE",
                        f"the request is {size} bytes; this shard holds at most {self.limit} bytes of requests "
                        "at once: send fewer or smaller parameters per request", limit=self.limit)
        if self.bytes + size > self.limit:
            raise Fault(grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_MANY_REQUESTS",
                        f"the shard already holds {self.bytes} bytes of requests, at most {self.limit}; retry later",
                        limit=self.limit)
        self.bytes += size
        try:
            yield
        finally:
            self.bytes -= size
