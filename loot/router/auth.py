"""Reading the bearer token from a call's metadata and verifying it (through the verified-token cache)."""

from __future__ import annotations

import functools
from collections.abc import Iterable

import grpc

from loot.tokens.cache import VerifiedTokens
from loot.tokens.claims import MAX_LIFETIME
from loot.tokens.errors import unauthenticated
from loot.router.admission import Admission, admit


def verified_tokens(max_lifetime: float = MAX_LIFETIME) -> VerifiedTokens[Admission]:
    """The router's cache of admitted tokens (one per process: every call is served on one event loop)."""
    return VerifiedTokens(verify=functools.partial(admit, max_lifetime=max_lifetime))


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


def authenticate(context: grpc.aio.ServicerContext, tokens: VerifiedTokens[Admission]) -> Admission:
    return tokens.verify(bearer_token(context.invocation_metadata()))
