"""Database ids: the one stable name of a database, derived from (account, name, tenant).

The id alone decides the file name and the shard, so user strings never become
paths. Each part is length-prefixed so ("a", "bc") and ("ab", "c") differ.
"""

from __future__ import annotations

import hashlib
import re

_DOMAIN = b"loot.database.v1"
_ID = re.compile(r"[0-9a-f]{64}")


def database_id(account: str, name: str, tenant: str) -> str:
    """Hex SHA-256 over the length-prefixed UTF-8 parts."""
    digest = hashlib.sha256(_DOMAIN)
    for part in (account, name, tenant):
        data = part.encode()
        digest.update(len(data).to_bytes(4, "big"))
        digest.update(data)
    return digest.hexdigest()


def is_database_id(value: str) -> bool:
    return _ID.fullmatch(value) is not None
