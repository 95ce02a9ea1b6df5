"""The old owner's files: which it holds for a new owner, a consistent copy of one, and retiring it.

Retired files go to DATA/handed-off/ (kept for recovery for --keep-handed-off days:
loot/shard/handoff/retention.py), out of the layout storage and `loot backup` read, so a
retired database is never served or backed up again.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from loot.internal.v1 import shard_pb2
from loot.shard.backup import databases, snapshot
from loot.shard.catalog import Entry
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


def catalog_row(storage: Storage, database_id: str) -> shard_pb2.CatalogRow | None:
    """The database's catalog row, to move with its copy; None when this shard keeps no row for it."""
    entry = storage.catalog.get(database_id) if storage.catalog is not None else None
    if entry is None:
        return None
    return shard_pb2.CatalogRow(account=entry.account, name=entry.name, tenant=entry.tenant, created=entry.created,
                                last_write=entry.last_write, bytes=entry.bytes, schema_hash=entry.schema_hash)


def catalog_entry(database_id: str, row: shard_pb2.CatalogRow | None) -> Entry | None:
    """The new owner's catalog entry for a database copied with `row` (None: its old owner had none)."""
    if row is None:
        return None
    return Entry(database_id, row.account, row.name, row.tenant, row.created, row.last_write, row.bytes,
                 row.schema_hash)


def retire(storage: Storage, database_id: str, epoch: int) -> bool:
    """Move the database's files out of service; False when already done (a repeated confirmation)."""
    target = storage.root / RETIRED / f"{database_id}.epoch-{epoch}.sqlite"
    if not storage.retire(database_id, target):
        return False
    for path in target.parent.glob(f"{target.name}*"):  # with its WAL: how long it is kept counts from now
        os.utime(path)
    return True
