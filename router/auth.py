"""Reading the bearer token from a call's metadata and verifying it."""

from __future__ import annotations

from collections.abc import Iterable

import grpc

from loot.status import Fault
from loot.tokens import Claims, verify


def bearer_token(metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    value = next((v for k, v in metadata or () if k == "authorization"), None)
    if value is None:
        raise Fault(grpc.StatusCode.UNAUTHENTICATED, "MISSING_TOKEN", "send `authorization: Bearer <token>` metadata")
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Fault(grpc.StatusCode.UNAUTHENTICATED, "BAD_AUTHORIZATION", "the authorization metadata must be `Bearer <token>`")
    return token.strip()


def authenticate(context: grpc.aio.ServicerContext) -> Claims:
    return verify(bearer_token(context.invocation_metadata()))
