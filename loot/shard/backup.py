"""Online backup: a consistent copy of every database file under a shard's data directory.

Each database is copied with SQLite's backup API in one step, inside one read
transaction, so the copy is exactly some committed state of that database
(WAL mode lets the shard keep writing meanwhile). Databases are independent,
so each copy is consistent on its own; there is no cross-database instant.
"""

from __future__ import annotations

from pathlib import Path

import apsw

from loot.ids import is_database_id
from loot.shard.storage import database_path


def snapshot(source: Path, target: Path) -> None:
    """Copy one live database file to `target`, consistently."""
    target.parent.mkdir(parents=True, exist_ok=True)
    reader = apsw.Connection(str(source), flags=apsw.SQLITE_OPEN_READONLY)
    writer = apsw.Connection(str(target))
    try:
        with writer.backup("main", reader, "main") as backup:
            backup.step(-1)  # all pages at once: one read transaction, one consistent state
        writer.execute("PRAGMA journal_mode=DELETE")  # a self-contained single file
    finally:
        writer.close()
        reader.close()


def databases(data: Path) -> list[Path]:
    """The database files of the shard whose directory is `data`: exactly where storage puts
    them, so anything else there (an earlier backup, say) is left alone."""
    # Only paths, never a Storage: opening one empties the scratch directory a live shard is using.
    return sorted(path for path in data.rglob("*.sqlite")
                  if is_database_id(path.stem) and database_path(data, path.stem) == path)


def snapshot_all(data: Path, out: Path) -> int:
    """Copy every database of the shard at `data` into the same layout under `out`; return how many."""
    sources = databases(data)
    for source in sources:
        snapshot(source, out / source.relative_to(data))
    return len(sources)
