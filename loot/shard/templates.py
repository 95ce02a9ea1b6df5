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

import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import apsw

from loot.status import Fault
from loot.shard import schema, system_tables
from loot.shard.access.enforcer import for_connection
from loot.shard.sandbox import Sandbox
from loot.shard.schema.history import digest

Connect = Callable[..., tuple[apsw.Connection, Sandbox]]


@dataclass(frozen=True)
class Template:
    """A new database under one claim."""

    key: str  # the claim's digest
    claim: str
    image: bytes  # the file
    changes: list[str]  # what applying the claim to an empty database changed
    schema_version: int | None  # the version the claim left; None when it failed (copies start empty)

    def introduce(self, conn: apsw.Connection) -> None:
        """Tell the schema engine that `conn`, opened on a fresh copy of this template, holds the claim."""
        if self.schema_version is not None:
            schema.known_current(conn, self.claim, self.key, self.schema_version)


class Templates:
    def __init__(self, scratch: Path, connect: Connect, capacity: int = 64):
        self.scratch = scratch
        self.connect = connect
        self.capacity = capacity
        self._templates: OrderedDict[str, Template] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, schema_claim: str) -> Template:
        """The template of new databases under `schema_claim` (built on first use)."""
        key = digest(schema_claim)
        with self._lock:
            if key in self._templates:
                self._templates.move_to_end(key)
                return self._templates[key]
        template = self._build(key, schema_claim)
        with self._lock:
            self._templates[key] = template
            while len(self._templates) > self.capacity:
                self._templates.popitem(last=False)
        return template

    def _build(self, key: str, schema_claim: str) -> Template:
        path = self.scratch / f"template-{uuid.uuid4().hex}.sqlite"
        conn, _ = self.connect(path, create=True)
        try:
            system_tables.create(conn)
            changes = _apply(conn, schema_claim)
            version = conn.pragma("schema_version")
        finally:
            conn.close()
        if changes is None:  # the claim fails: new databases start empty and the request reports the failure
            path.unlink()
            empty = self.get("")
            return Template(key, schema_claim, empty.image, empty.changes, None)
        image = path.read_bytes()
        path.unlink()
        return Template(key, schema_claim, image, changes, version)


def _apply(conn: apsw.Connection, schema_claim: str) -> list[str] | None:
    try:
        return for_connection(conn).apply_schema(schema_claim)
    except Fault:
        return None
