"""The old owner's files: which it holds for a new owner, a consistent copy of one, and retiring it.

Retired files go to DATA/handed-off/ (kept for recovery until an operator deletes them),
out of the layout storage and `loot backup` read, so a retired database is never served
or backed up again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from loot.ids import is_database_id
from shard.backup import snapshot
from shard.storage import Storage

RETIRED = "handed-off"
CHUNK = 256 * 1024


def held(storage: Storage, wanted: Callable[[str], bool]) -> list[str]:
    """Ids of the databases whose live file this shard holds and `wanted` accepts."""
    ids = (path.stem for path in storage.root.glob("??/??/*.sqlite"))
    return sorted(database_id for database_id in ids
                  if is_database_id(database_id) and wanted(database_id) and storage.path(database_id).exists())


def copy(storage: Storage, database_id: str) -> Path | None:
    """A consistent single-file copy of the database in the scratch directory; None when there is no file."""
    source = storage.path(database_id)
    if not source.exists():
        return None
    target = storage.staging_path(source.name)
    snapshot(source, target)
    return target


def chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK):
            yield chunk


def retire(storage: Storage, database_id: str, epoch: int) -> bool:
    """Move the database's files out of service; False when already done (a repeated confirmation)."""
    return storage.retire(database_id, storage.root / RETIRED / f"{database_id}.epoch-{epoch}.sqlite")
