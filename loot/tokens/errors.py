"""How a token is refused (docs/tokens.md#refusals): who you are -> UNAUTHENTICATED, what you asked for -> INVALID_ARGUMENT.

Every refusal carries a stable ErrorInfo reason; clients branch on the reason,
people read the message.
"""

from __future__ import annotations

from typing import Any

import grpc

from loot.status import Fault


def unauthenticated(reason: str, message: str, **metadata: Any) -> Fault:
    return Fault(grpc.StatusCode.UNAUTHENTICATED, reason, message, **metadata)


def invalid(reason: str, message: str, **metadata: Any) -> Fault:
    return Fault(grpc.StatusCode.INVALID_ARGUMENT, reason, message, **metadata)


def shown(value: Any, limit: int = 64) -> str:
    """A client-supplied value quoted in a message, cut short: errors travel in size-limited trailers."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
