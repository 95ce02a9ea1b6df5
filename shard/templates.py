"""Template images: each distinct schema claim is built once into a database
file, kept in memory, and copied for every new database that names it.

Creating a database is then a file write instead of running the schema's DDL
again, and a new database is exactly what applying the claim to an empty one
gives (the same schema phase as a request's, `Enforcer.apply_schema`, on a fresh file).
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import apsw

from loot.status import Fault
from shard import access, system_tables
from shard.sandbox import Sandbox

Connect = Callable[..., tuple[apsw.Connection, Sandbox]]
Image = tuple[bytes, list[str]]  # (file bytes, what applying the claim changed)


class Templates:
    def __init__(self, scratch: Path, connect: Connect, capacity: int = 64):
        self.scratch = scratch
        self.connect = connect
        self.capacity = capacity
        self._images: OrderedDict[str, Image] = OrderedDict()
        self._lock = threading.Lock()

    def image(self, schema_claim: str) -> Image:
        """The file of a new database under `schema_claim` (built on first use)."""
        key = hashlib.sha256(schema_claim.encode()).hexdigest()
        with self._lock:
            if key in self._images:
                self._images.move_to_end(key)
                return self._images[key]
        image = self._build(schema_claim)
        with self._lock:
            self._images[key] = image
            while len(self._images) > self.capacity:
                self._images.popitem(last=False)
        return image

    def _build(self, schema_claim: str) -> Image:
        path = self.scratch / f"template-{uuid.uuid4().hex}.sqlite"
        conn, _ = self.connect(path, create=True)
        try:
            system_tables.create(conn)
            changes = _apply(conn, schema_claim)
        finally:
            conn.close()
        if changes is None:  # the claim fails: new databases start empty and the request reports the failure
            path.unlink()
            return self.image("")
        image = path.read_bytes()
        path.unlink()
        return image, changes


def _apply(conn: apsw.Connection, schema_claim: str) -> list[str] | None:
    try:
        return access.for_connection(conn).apply_schema(schema_claim)
    except Fault:
        return None
