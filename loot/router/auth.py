"""Reading the bearer token from a call's metadata and verifying it (through the verified-token cache)."""

from __future__ import annotations

from collections.abc import Iterable

import grpc

from loot.tokens.cache import VerifiedTokens
from loot.tokens.errors import unauthenticated
from loot.router.admission import Admission, admit

# One per router process: the router serves every call on one event loop.
VERIFIED: VerifiedTokens[Admission] = VerifiedTokens(verify=admit)


def bearer_token(metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    values = [v for k, v in metadata or () if k == "authorization"]
    if not values:
        raise unauthenticated("MISSING_TOKEN", "send `authorization: Bearer <token>` metadata")
    if len(values) > 1:
        raise unauthenticated("BAD_AUTHORIZATION", "send exactly one `authorization` metadata entry")
    value = values[0]
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthenticated("BAD_AUTHORIZATION", "the authorization metadata must be `Bearer <token>`")
    return token.strip()


def authenticate(context: grpc.aio.ServicerContext) -> Admission:
    return VERIFIED.verify(bearer_token(context.invocation_metadata()))
