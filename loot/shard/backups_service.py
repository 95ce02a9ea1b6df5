"""The Backups service: an operator's restore, export and import of one database on its owner shard.

A restore or import writes the new file into the scratch directory first (nothing changes if that
fails), then puts it in place while the database's requests wait (`Databases.swap`): a new database
is renamed into place, an existing one is overwritten in one transaction, so the replicator carries
on with its history (the state before stays restorable, with --at).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import apsw
import grpc

from loot.ids import database_id as id_of
from loot.ids import is_database_id
from loot.internal.v1 import shard_pb2, shard_pb2_grpc
from loot.membership import MembershipSource
from loot.status import Fault, guard
from loot.shard import import_file
from loot.shard.catalog import Entry
from loot.shard.databases import Databases
from loot.shard.export import export_copy
from loot.shard.handoff import files
from loot.shard.replica_restore import restore
from loot.shard.replica_target import ReplicaTarget
from loot.shard.schema.history import current_hash
from loot.shard.storage import Storage


class BackupsService(shard_pb2_grpc.BackupsServicer):
    def __init__(self, name: str, membership: MembershipSource, databases: Databases, target: ReplicaTarget | None):
        self.name = name
        self.membership = membership
        self.databases = databases
        self.storage: Storage = databases.storage
        self.target = target

    @guard
    async def Restore(self, request: shard_pb2.RestoreRequest, context) -> shard_pb2.PlacedResponse:
        self._own(request.database_id)
        if self.target is None:
            raise Fault(grpc.StatusCode.FAILED_PRECONDITION, "NO_REPLICA",
                        f"{self.name} replicates nothing: start it with --replica (docs/backups.md)")
        source = request.source_id or request.database_id
        if not is_database_id(source):
            raise Fault(grpc.StatusCode.INVALID_ARGUMENT, "BAD_DATABASE_ID", "the source is not a database id")
        staging = self.storage.staging_path(f"{request.database_id}.restore")
        try:
            await _off_loop(restore, self.target, source, staging, request.timestamp)
            await _off_loop(_check_whole, staging)
            return await self._place(request.database_id, staging, request.row if request.HasField("row") else None,
                                     replace=source == request.database_id)  # a branch is a new database
        finally:
            staging.unlink(missing_ok=True)

    @guard
    async def Export(self, request: shard_pb2.ExportRequest, context: grpc.aio.ServicerContext) -> None:
        self._own(request.database_id)
        copied = await _off_loop(export_copy, self.storage, request.database_id, request.internal_tables)
        if copied is None:
            raise Fault(grpc.StatusCode.NOT_FOUND, "NO_DATABASE", f"{self.name} has no file for this database")
        try:
            with open(copied, "rb") as file:
                while chunk := await _off_loop(file.read, files.CHUNK):
                    await context.write(shard_pb2.HandoffChunk(data=chunk))
        finally:
            copied.unlink(missing_ok=True)

    @guard
    async def Import(self, requests: AsyncIterator[shard_pb2.ImportChunk], context) -> shard_pb2.PlacedResponse:
        staging, first, size = None, None, 0
        try:
            async for chunk in requests:
                size += len(chunk.data)
                if size > self.storage.limits.database_bytes:
                    raise Fault(grpc.StatusCode.RESOURCE_EXHAUSTED, "DATABASE_FULL",
                                f"the file is larger than this shard's databases may be "
                                f"({self.storage.limits.database_bytes} bytes, --database-bytes)")
                if first is None:
                    first = chunk
                    self._own(chunk.database_id)
                    if self.storage.path(chunk.database_id).exists():
                        raise Fault(grpc.StatusCode.ALREADY_EXISTS, "DATABASE_EXISTS",
                                    "that database exists: import makes a new one (restore replaces one)")
                    staging = self.storage.staging_path(f"{chunk.database_id}.import")
                    file = open(staging, "xb")
                await _off_loop(file.write, chunk.data)
            if first is None:
                raise Fault(grpc.StatusCode.INVALID_ARGUMENT, "IMPORT_REFUSED", "no file was sent")
            file.close()
            await _off_loop(import_file.check, staging)
            return await self._place(first.database_id, staging, first.row if first.HasField("row") else None,
                                     replace=False)
        finally:
            if staging is not None:
                file.close()
                staging.unlink(missing_ok=True)

    def _own(self, database_id: str) -> None:
        if not is_database_id(database_id):
            raise Fault(grpc.StatusCode.INVALID_ARGUMENT, "BAD_DATABASE_ID", "not a database id")
        owner = self.membership.current.ring.owner(database_id)
        if owner != self.name:
            raise Fault(grpc.StatusCode.FAILED_PRECONDITION, "WRONG_SHARD",
                        f"database belongs to {owner}, not {self.name}", owner=owner,
                        epoch=self.membership.current.epoch)

    async def _place(self, database_id: str, staging: Path, row: shard_pb2.CatalogRow | None,
                     replace: bool) -> shard_pb2.PlacedResponse:
        """Swap `staging` in as the database, its catalog row kept, else made from `row`."""
        entry = self.storage.catalog.get(database_id) if self.storage.catalog is not None else None
        if entry is None:
            if row is None or id_of(row.account, row.name, row.tenant) != database_id:
                raise Fault(grpc.StatusCode.INVALID_ARGUMENT, "BAD_DATABASE_ID",
                            "a new database needs the account, name and tenant its id is made of")
            now = time.time()
            entry = Entry(database_id, row.account, row.name, row.tenant, now, now, 0, "")
        size, schema_hash = await _off_loop(_measure, staging)
        entry = Entry(entry.database_id, entry.account, entry.name, entry.tenant, entry.created, time.time(),
                      size, schema_hash)
        await self.databases.swap(database_id, functools.partial(self._swap, database_id, staging, entry, replace))
        return shard_pb2.PlacedResponse(bytes=size, schema_hash=schema_hash)

    def _swap(self, database_id: str, staging: Path, entry: Entry, replace: bool) -> None:
        if not self.storage.path(database_id).exists():
            self.storage.install(database_id, staging, entry)
        elif replace:  # its state before stays in the replica's history
            self.storage.overwrite(database_id, staging, entry)
        else:  # created by a request while the file was checked
            raise Fault(grpc.StatusCode.ALREADY_EXISTS, "DATABASE_EXISTS", "that database exists")


def _check_whole(path: Path) -> None:
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READWRITE)
    try:
        if conn.execute("PRAGMA integrity_check").fetchall() != [("ok",)]:
            raise Fault(grpc.StatusCode.DATA_LOSS, "RESTORE_DAMAGED", "the restored file fails integrity_check")
        conn.execute("PRAGMA journal_mode=DELETE")  # one self-contained file to install
    finally:
        conn.close()


def _measure(path: Path) -> tuple[int, str]:
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return path.stat().st_size, current_hash(conn)
    finally:
        conn.close()


async def _off_loop(function: Callable, *args):
    return await asyncio.get_running_loop().run_in_executor(None, function, *args)
