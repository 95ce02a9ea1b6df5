"""Where a database's file lives, and opening it with Loot's settings.

Paths come from the database id (a hex hash) only, fanned out over two levels
of directories so no directory grows huge.
"""

from __future__ import annotations

from pathlib import Path

import apsw

from loot.ids import is_database_id
from shard import system_tables


class Storage:
    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path(self, database_id: str) -> Path:
        if not is_database_id(database_id):
            raise ValueError(f"not a database id: {database_id!r}")
        return self.root / database_id[:2] / database_id[2:4] / f"{database_id}.sqlite"

    def open(self, database_id: str) -> apsw.Connection:
        path = self.path(database_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = apsw.Connection(str(path))
        conn.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON")
        system_tables.create(conn)
        return conn
