"""The request id: one per client call, carried router -> shard in `x-request-id` metadata.

A client may choose it (to find its call in the logs); the router makes one
when the client sent none, or sent something that is not a plausible id.
"""

from __future__ import annotations

import contextvars
import os
import re
from collections.abc import Iterable

HEADER = "x-request-id"
_PLAUSIBLE = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")  # printable, log-safe, bounded

current: contextvars.ContextVar[str | None] = contextvars.ContextVar("loot_request_id", default=None)


def from_metadata(metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    """The caller's request id if it is plausible, else a fresh one."""
    return plausible_or_fresh(next((v for k, v in metadata or () if k == HEADER), None))


def plausible_or_fresh(value: str | bytes | None) -> str:
    """`value` if it is a plausible request id, else a fresh one."""
    if isinstance(value, str) and _PLAUSIBLE.match(value):
        return value
    return os.urandom(16).hex()  # as random as a uuid4, without building one

