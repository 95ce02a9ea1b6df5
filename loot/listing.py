"""Pages of an account's database list (docs/fleet.md): the page size and the opaque page token,
read alike by the router and by each shard it asks.

A page token is the base64url JSON of the last (name, tenant) listed: the next page starts strictly
after it in (name, tenant) order, so databases created meanwhile are neither skipped nor repeated
wherever they fall, and a token stays valid whatever the cluster does between pages.
"""

from __future__ import annotations

import base64
import binascii
import json

import grpc

from loot.status import Fault

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


def page_size(requested: int) -> int:
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    if not 1 <= requested <= MAX_PAGE_SIZE:
        raise Fault(grpc.StatusCode.INVALID_ARGUMENT, "BAD_PAGE_SIZE",
                    f"page_size must be 1 to {MAX_PAGE_SIZE}, or 0 for {DEFAULT_PAGE_SIZE} (got {requested})",
                    limit=MAX_PAGE_SIZE)
    return requested


def page_token(name: str, tenant: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([name, tenant]).encode()).decode().rstrip("=")


def after(token: str) -> tuple[str, str] | None:
    """The (name, tenant) a page token names; None for the first page."""
    if not token:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error):
        value = None
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(part, str) for part in value)):
        raise Fault(grpc.StatusCode.INVALID_ARGUMENT, "BAD_PAGE_TOKEN",
                    "page_token must be a next_page_token from an earlier ListDatabases answer")
    return value[0], value[1]
