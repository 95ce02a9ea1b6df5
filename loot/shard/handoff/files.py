"""The old owner's files: which it holds for a new owner, a consistent copy of one, and retiring it.

Retired files go to DATA/handed-off/ (kept for recovery for --keep-handed-off days:
loot/shard/handoff/retention.py), out of the layout storage and `loot backup` read, so a
retired database is never served or backed up again.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from loot.shard.backup import databases, snapshot
from loot.shard.storage import Storage

RETIRED = "handed-off"
CHUNK = 256 * 1024


def held(storage: Storage, wanted: Callable[[str], bool]) -> list[str]:
    """Ids of the databases whose live file this shard holds and `wanted` accepts."""
    return [path.stem for path in databases(storage.root) if wanted(path.stem)]


def copy(storage: Storage, database_id: str) -> Path | None:
    """A consistent single-file copy of the database in the scratch directory; None when there is no file."""
    source = storage.path(database_id)
    if not source.exists():
        return None
    target = storage.staging_path(source.name)
    snapshot(source, target)
    return target


def retire(storage: Storage, database_id: str, epoch: int) -> bool:
    """Move the database's files out of service; False when already done (a repeated confirmation)."""
    target = storage.root / RETIRED / f"{database_id}.epoch-{epoch}.sqlite"
    if not storage.retire(database_id, target):
        return False
    for path in target.parent.glob(f"{target.name}*"):  # with its WAL: how long it is kept counts from now
        os.utime(path)
    return True
