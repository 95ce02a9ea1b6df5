"""A database as a plain SQLite file a user opens with `sqlite3`: `loot export` (docs/backups.md)."""

from __future__ import annotations

from pathlib import Path

import apsw

from loot.shard import system_tables
from loot.shard.backup import snapshot
from loot.shard.storage import Storage


def export_copy(storage: Storage, database_id: str, internal_tables: bool) -> Path | None:
    """A consistent single-file copy in the scratch directory (some committed state: the shard keeps
    writing meanwhile), without Loot's and the replicator's tables unless `internal_tables`; None
    when the database has no file here."""
    source = storage.path(database_id)
    if not source.exists():
        return None
    target = storage.staging_path(f"{database_id}.export")
    snapshot(source, target)
    if not internal_tables:
        strip_internal_tables(target)
    return target


def strip_internal_tables(path: Path) -> None:
    """Drop every reserved table (their indexes and triggers go with them), then compact the file."""
    conn = apsw.Connection(str(path))
    try:
        names = [name for (name,) in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")
                 if system_tables.is_system_table(name) and not name.lower().startswith("sqlite_")]
        with conn:
            for name in names:
                conn.execute(f'DROP TABLE "{name.replace(chr(34), chr(34) * 2)}"')
        conn.execute("VACUUM")
    finally:
        conn.close()
