"""The "database per signed-in user" recipe: a stable tenant per subject and a
fresh short-lived token scoped to that one database."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loot.ids import database_id
from loot.tokens.base64url import b64url
from loot.tokens.mint import mint

if TYPE_CHECKING:  # keys.py imports this module when a Key provisions
    from loot.tokens.keys import Key

MAX_SUBJECT = 256


@dataclass(frozen=True)
class DatabaseName:
    account: str
    name: str
    tenant: str

    @property
    def id(self) -> str:
        return database_id(self.account, self.name, self.tenant)


@dataclass(frozen=True)
class Provision:
    token: str
    database: DatabaseName
    expires_at: float


def tenant_for(subject: str) -> str:
    """A stable tenant for any subject string; the subject itself never reaches the token."""
    if not isinstance(subject, str) or not subject or len(subject) > MAX_SUBJECT:
        raise ValueError(f"subject must be a non-empty string of at most {MAX_SUBJECT} characters")
    return "u_" + b64url(hashlib.sha256(b"loot.subject.v1\0" + subject.encode()).digest())


def provision(key: Key, subject: str, template: str | None = None, *, name: str = "app", ttl: int = 900) -> Provision:
    now = time.time()
    tenant = tenant_for(subject)
    token = mint(key, name, tenant, ttl=ttl, now=now, schema=template)
    return Provision(token, DatabaseName(key.account, name, tenant), int(now) + ttl)
