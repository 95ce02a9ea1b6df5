"""Template images: each distinct schema claim is built once into a database
file, kept in memory, and copied for every new database that names it.

Creating a database is then a file write instead of running the schema's DDL
again, and a new database is exactly what applying the claim to an empty one
gives (the same schema phase as a request's, `Enforcer.apply_schema`, on a fresh file).
A template also knows the schema version the claim left, so a connection to a
fresh copy starts knowing the claim is current (`Template.introduce`): its first
request checks the claim with one PRAGMA, as every later one does.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import apsw

from loot.byte_lru import ByteLRU, footprint
from loot.status import Fault
from loot.shard import schema, system_tables
from loot.shard.access.enforcer import for_connection
from loot.shard.sandbox import Sandbox
from loot.shard.schema.history import current_hash, digest

Connect = Callable[..., tuple[apsw.Connection, Sandbox]]
# Images kept in memory: a claim's tables, indexes and schema pages (tens of KiB each, usually).
TEMPLATE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Template:
    """A new database under one claim."""

    key: str  # the claim's digest
    claim: str
    image: bytes  # the file
    changes: list[str]  # what applying the claim to an empty database changed
    schema_version: int | None  # the version the claim left; None when it failed (copies start empty)
    schema_hash: str  # the current claim's hash in a copy (the catalog's), empty when none applied

    @property
    def size(self) -> int:
        """Bytes it holds: the file image and the claim (the rest is small)."""
        return len(self.image) + len(self.claim) + footprint(self.changes)

    def introduce(self, conn: apsw.Connection) -> None:
        """Tell the schema engine that `conn`, opened on a fresh copy of this template, holds the claim."""
        if self.schema_version is not None:
            schema.known_current(conn, self.claim, self.key, self.schema_version)


class Templates:
    def __init__(self, scratch: Path, connect: Connect, max_bytes: int = TEMPLATE_BYTES):
        self.scratch = scratch
        self.connect = connect
        self._templates: ByteLRU[str, Template] = ByteLRU(max_bytes, lambda key, template: template.size)

    def get(self, schema_claim: str) -> Template:
        """The template of new databases under `schema_claim` (built on first use)."""
        key = digest(schema_claim)
        template = self._templates.get(key)
        if template is None:
            template = self._build(key, schema_claim)
            self._templates.put(key, template)
        return template

    def _build(self, key: str, schema_claim: str) -> Template:
        path = self.scratch / f"template-{uuid.uuid4().hex}.sqlite"
        conn, _ = self.connect(path, create=True)
        try:
            system_tables.create(conn)
            changes = _apply(conn, schema_claim)
            version = conn.pragma("schema_version")
            schema_hash = current_hash(conn)
        finally:
            conn.close()
        if changes is None:  # the claim fails: new databases start empty and the request reports the failure
            path.unlink()
            empty = self.get("")
            return Template(key, schema_claim, empty.image, empty.changes, None, empty.schema_hash)
        image = path.read_bytes()
        path.unlink()
        return Template(key, schema_claim, image, changes, version, schema_hash)


def _apply(conn: apsw.Connection, schema_claim: str) -> list[str] | None:
    try:
        return for_connection(conn).apply_schema(schema_claim)
    except Fault:
        return None
