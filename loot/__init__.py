"""Loot: a database per tenant, reached over gRPC, authorised by self-issued JWTs.

    from loot import Key, Client
    key = Key.generate()
    with Client("127.0.0.1:7070") as client:
        db = client.database("app", tenant="alice", key=key, schema="CREATE TABLE notes (body TEXT)")
        db.execute("SELECT count(*) FROM notes").scalar()
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["AsyncClient", "Client", "Key", "LootError"]

_EXPORTS = {"Key": "loot.tokens", "Client": "loot.sdk.client", "AsyncClient": "loot.sdk.client", "LootError": "loot.errors"}

if TYPE_CHECKING:
    from loot.errors import LootError
    from loot.sdk.client import AsyncClient, Client
    from loot.tokens import Key


def __getattr__(name: str):
    # Lazy, so `import loot.ids` in a shard does not load the client stack.
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'loot' has no attribute {name!r}")
