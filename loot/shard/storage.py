"""Database files: where each lives, creating it crash-safely, opening it with
Loot's settings, and deleting it durably.

Paths come from the database id (a hex hash) only, fanned out over two levels
of directories so no directory grows huge. A new database is a copy of its
schema's template (loot/shard/templates.py), written whole into DIR/.tmp (cleared at
start) and, with durability full, fsynced — ahead of need, by loot/shard/spares.py,
or on the spot when no spare copy is ready — then renamed into place: a kill -9
or power loss mid-creation leaves either no database or a whole one, never a
half-made file that later looks valid.

The rename becomes durable before any write to the new database is
acknowledged: SQLite fsyncs a new WAL's directory (the database's) on the WAL's
first sync, which comes before the first commit returns. Until then a power
loss may take the new, still empty, database back; the next touch makes it again.
"""

from __future__ import annotations

import functools
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import apsw

from loot.ids import is_database_id
from loot.status import Fault
from loot.shard.catalog import Catalog, Entry, Identity
from loot.shard.limits import Limits
from loot.shard.quotas import Quotas
from loot.shard.sandbox import BUSY_MS, Sandbox
from loot.shard.spares import Spares, write_copy
from loot.shard.templates import Template, Templates
from loot.shard.memory import KeptStatements
from loot.shard.schema.history import current_hash

_SIDE_FILES = ("-wal", "-shm")
# A build without it would leave the rename of a new database undurable until a later checkpoint.
_SQLITE_SYNCS_WAL_DIRECTORY = "DISABLE_DIRSYNC" not in apsw.compile_options
_OPEN_FLAGS = apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_NOFOLLOW


@dataclass
class OpenDatabase:
    """An open database: its connection, the connection's sandbox, and what creating it changed."""

    conn: apsw.Connection
    sandbox: Sandbox
    path: Path
    storage: Storage
    creation_changes: list[str] = field(default_factory=list)
    destroyed: bool = False
    kept: KeptStatements = field(default_factory=KeptStatements)  # what apsw's statement cache may keep
    database_id: str = ""
    account: str = ""  # whose it is, when the request that opened it said (quotas count it)
    # Its page size, its own page limit (--database-bytes) and the limit set now: read once, when a quota needs them.
    _pages: tuple[int, int, int] | None = None

    def limit_growth(self) -> None:
        """Before a work: let the database grow only by what its account has left under the bytes quota
        (SQLite's page limit), and have the sandbox say so when a write finds no room."""
        quotas = self.storage.quotas
        if quotas is None or not quotas.bytes or not self.account:
            return
        room = quotas.room(self.storage.catalog.usage(self.account))
        if self._pages is None:
            limit = self.conn.pragma("max_page_count")
            self._pages = self.conn.pragma("page_size"), limit, limit
        size, own, now = self._pages
        wanted = min(own, self.conn.pragma("page_count") + room // size)
        if wanted != now:  # below the current size, SQLite keeps the current size: no growth at all
            self._pages = size, own, self._set_page_limit(wanted)
        self.sandbox.full = self.quota_refusal if wanted < own else None

    def _set_page_limit(self, pages: int) -> int:
        """PRAGMA max_page_count, which the access enforcer's authorizer refuses to all SQL, run with it set
        aside: setting it back expires the prepared statements, so each is authorized again before it runs."""
        authorizer, self.conn.authorizer = self.conn.authorizer, None
        try:
            return self.conn.execute(f"PRAGMA max_page_count = {int(pages)}", can_cache=False).fetchone()[0]
        finally:
            self.conn.authorizer = authorizer

    def quota_refusal(self, **metadata: object) -> Fault:
        """The bytes quota's refusal of a write that found no room under the lowered page limit."""
        refusal = self.storage.quotas.bytes_refusal(self.account, self.storage.catalog.usage(self.account))
        refusal.metadata.update((key, str(value)) for key, value in metadata.items())
        return refusal

    def write_mark(self) -> tuple[int, int] | None:
        """What changes when a request writes: rows changed, and the schema's version (DDL); None
        when SQLite cannot say (out of memory, say), which `note_writes` takes as a change."""
        try:
            return self.conn.total_changes(), self.conn.pragma("schema_version")
        except apsw.Error:
            return None

    def note_writes(self, mark: tuple[int, int] | None) -> None:
        """Tell the shard's catalog that the database changed since `mark`."""
        if self.destroyed:
            return
        try:
            if mark is not None and self.write_mark() == mark:
                return
            size = self.conn.pragma("page_count") * self.conn.pragma("page_size")
            schema_hash = current_hash(self.conn)
        except apsw.Error:  # out of memory, say: the request's own outcome stands; the next write catches up
            return
        self.storage.catalog.wrote(self.database_id, size, schema_hash)

    def take_creation_changes(self) -> list[str]:
        changes, self.creation_changes = self.creation_changes, []
        return changes

    def destroy(self) -> None:
        self.storage.destroy(self)

    def close(self) -> None:
        if not self.destroyed:
            close_connection(self.conn, self.storage.replicated)


def close_connection(conn: apsw.Connection, replicated: bool) -> None:
    """Close a database's connection; unless `replicated`, checkpointing its WAL first."""
    if replicated:
        # The replicator owns checkpoints (loot/shard/replicator.py): a WAL truncated here before
        # it copied the frames would cost it a whole new snapshot of the database.
        conn.config(apsw.SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1)
    else:
        checkpoint_before_close(conn)
    conn.close()


def checkpoint_before_close(conn: apsw.Connection) -> None:
    """Run the checkpoint a last close runs, with the GIL released: apsw holds the GIL through
    sqlite3_close, so its checkpoint (writes and two fsyncs) would stop every other thread, the event
    loop included, until the disk answers. TRUNCATE also empties the WAL, so that close, which deletes
    it, has no blocks left to free; without waiting: a reader in another process (`loot backup`) makes
    it stop where PASSIVE would, busy."""
    conn.set_busy_timeout(0)
    try:
        conn.wal_checkpoint(mode=apsw.SQLITE_CHECKPOINT_TRUNCATE)
    except apsw.Error:  # busy (a reader, another checkpoint) or I/O: close checkpoints what is left, as it always did
        pass


def database_path(root: Path, database_id: str) -> Path:
    """Where a database lives in the shard directory `root`: its id alone decides."""
    if not is_database_id(database_id):
        raise ValueError(f"not a database id: {database_id!r}")
    return root / database_id[:2] / database_id[2:4] / f"{database_id}.sqlite"


# Copies of each recent template the shard server keeps ready (loot/shard/spares.py).
SPARE_COPIES = 16


class Storage:
    def __init__(self, root: Path, limits: Limits = Limits(), spare_copies: int = 0, catalog: bool = False,
                 quotas: Quotas | None = None, replicated: bool = False):
        """`spare_copies` > 0 keeps that many copies of each recent template written ahead, by a
        background thread; the shard server does (SPARE_COPIES), tools and tests need not. `catalog`
        keeps the shard's catalog (loot/shard/catalog.py) exact through creation, destroy and handoff;
        `quotas` (which need it) limit each account's databases and bytes. `replicated`: a replicator
        copies every database's WAL, and checkpoints it."""
        if quotas is not None and not catalog:
            raise ValueError("quotas count an account's databases in the catalog")
        self.root = root
        self.replicated = replicated
        self.limits = limits
        self.quotas = quotas
        self.scratch = root / ".tmp"
        shutil.rmtree(self.scratch, ignore_errors=True)  # leftovers of creations a crash interrupted
        # exist_ok: an earlier Storage of this process may still be writing a spare there; its copies
        # live in a directory of its own, never served by this one.
        self.scratch.mkdir(parents=True, exist_ok=True)
        self._known_dirs: set[Path] = set()
        # With durability "normal" only a process crash is survived, and rename alone is atomic for that.
        self._power_safe = limits.durability == "full"
        self.templates = Templates(self.scratch, self.connect)
        self.spares = (Spares(self.scratch / f"spares-{uuid.uuid4().hex}", self._power_safe, spare_copies)
                       if spare_copies else None)
        self.catalog = Catalog(root, self._power_safe) if catalog else None
        if self.catalog is not None:
            self.catalog.forget_missing(lambda database_id: self.path(database_id).exists())

    def path(self, database_id: str) -> Path:
        return database_path(self.root, database_id)

    def open(self, database_id: str, schema_claim: str = "", identity: Identity | None = None) -> OpenDatabase:
        """Open the database, creating it (from the template for `schema_claim`) if new; a new one
        enters the catalog as `identity`'s."""
        path = self.path(database_id)
        template = None if path.exists() else self._create(path, schema_claim, database_id, identity)
        conn, sandbox = self.connect(path)
        account = identity.account if identity is not None else ""
        if template is None:
            return OpenDatabase(conn, sandbox, path, self, database_id=database_id, account=account)
        template.introduce(conn)
        return OpenDatabase(conn, sandbox, path, self, list(template.changes), database_id=database_id, account=account)

    def connect(self, path: Path, create: bool = False) -> tuple[apsw.Connection, Sandbox]:
        """A connection with Loot's pragmas and its sandbox installed (its authorizer comes with its
        access enforcer, `access.for_connection`, on first use)."""
        # Statements stay in SQLite's cache across requests: a cached statement is not authorized again,
        # so the access enforcer re-sets the authorizer (expiring them all) whenever its answer may change.
        conn = apsw.Connection(str(path), flags=_OPEN_FLAGS | (apsw.SQLITE_OPEN_CREATE if create else 0))
        conn.set_busy_timeout(BUSY_MS)
        # Normal (shared) locking, not EXCLUSIVE: `loot backup` (loot/shard/backup.py) reads live databases from
        # another process while the shard writes them, which an exclusive lock would refuse.
        conn.pragma("journal_mode", "wal")
        conn.pragma("synchronous", "full" if self.limits.durability == "full" else "normal")
        conn.pragma("foreign_keys", True)
        conn.pragma("recursive_triggers", True)
        conn.pragma("cache_size", -self.limits.cache_kib)
        conn.pragma("max_page_count", max(1, self.limits.database_bytes // conn.pragma("page_size")))
        return conn, Sandbox(conn, self.limits)

    def destroy(self, database: OpenDatabase) -> None:
        """Close and durably delete the database's files; the next touch creates it afresh."""
        # Without the checkpoint a last close runs: it would write pages into a file about to be
        # deleted, with the GIL held throughout (see checkpoint_before_close). The WAL it leaves
        # is deleted below, and could never replay into a new file anyway (_create).
        database.conn.config(apsw.SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1)
        database.conn.close()
        database.destroyed = True
        tombstone = self.scratch / f"destroyed-{uuid.uuid4().hex}"
        os.rename(database.path, tombstone)
        _fsync_dir(database.path.parent)
        _remove_side_files(database.path)
        tombstone.unlink()
        if self.catalog is not None:
            self.catalog.remove(database.database_id)

    def _create(self, path: Path, schema_claim: str, database_id: str, identity: Identity | None) -> Template:
        template = self.templates.get(schema_claim)
        self._ensure_dir(path.parent)
        if self.catalog is not None:
            if identity is None:
                raise ValueError("a shard with a catalog creates a database only knowing whose it is")
            now = time.time()
            admit = (None if self.quotas is None
                     else functools.partial(self.quotas.admit_creation, identity.account, len(template.image)))
            self.catalog.add(Entry(database_id, identity.account, identity.name, identity.tenant, now, now,
                                   len(template.image), template.schema_hash), admit)
        _remove_side_files(path)  # a WAL left by a destroyed predecessor must never replay into the new file
        self._place(template, path)
        if self._power_safe and not _SQLITE_SYNCS_WAL_DIRECTORY:
            _fsync_dir(path.parent)
        return template

    def _place(self, template: Template, path: Path) -> None:
        """Rename a whole copy of the template to `path` (atomic: a killed process leaves all of it or none)."""
        spare = self.spares.take(template) if self.spares else None
        if spare is not None:
            try:
                os.rename(spare, path)
                return
            except FileNotFoundError:  # the scratch directory was emptied under us: write a copy of our own
                pass
        os.rename(write_copy(self.scratch, template, self._power_safe), path)

    def staging_path(self, name: str) -> Path:
        """A fresh file name in the scratch directory, which is cleared when the shard starts."""
        return self.scratch / f"{name}.{uuid.uuid4().hex}"

    def install(self, database_id: str, staging: Path, entry: Entry | None = None) -> None:
        """Move a complete database written at `staging` (from `staging_path`) into place, crash-safely
        and durably at once: the copy's previous owner deletes its file once told it is in place.
        `entry` is its catalog row from the previous owner."""
        path = self.path(database_id)
        if self.catalog is not None and entry is not None:
            self.catalog.add(entry)
        self._ensure_dir(path.parent)
        _remove_side_files(path)  # a WAL left by a destroyed predecessor must never replay into the copy
        if self._power_safe:
            with open(staging, "rb") as file:
                os.fsync(file.fileno())
        os.rename(staging, path)
        if self._power_safe:
            _fsync_dir(path.parent)

    def overwrite(self, database_id: str, source: Path, entry: Entry) -> None:
        """Make the (closed) database's content that of the database file `source`, in one transaction
        through SQLite's backup API: the same file stays, so a replicator carries on with the change
        as with any write (a file renamed over it would leave it replicating the old one)."""
        conn, _ = self.connect(self.path(database_id))
        try:
            reader = apsw.Connection(str(source), flags=apsw.SQLITE_OPEN_READONLY)
            try:
                with conn.backup("main", reader, "main") as backup:
                    backup.step(-1)  # all pages in one step: one transaction
            finally:
                reader.close()
        finally:
            close_connection(conn, self.replicated)
        if self.catalog is not None:
            self.catalog.add(entry)

    def retire(self, database_id: str, target: Path) -> bool:
        """Durably move the (closed) database's files to `target`, out of service; False when it has none."""
        path = self.path(database_id)
        if not path.exists():
            return False
        target.parent.mkdir(exist_ok=True)
        os.rename(path, target)  # first: once it is gone nothing here can open it again
        for suffix in _SIDE_FILES:  # a WAL left by a reader's last close belongs with its file
            if Path(f"{path}{suffix}").exists():
                os.rename(f"{path}{suffix}", f"{target}{suffix}")
        if self._power_safe:
            _fsync_dir(path.parent)
        if self.catalog is not None:
            self.catalog.remove(database_id)
        return True

    def _ensure_dir(self, directory: Path) -> None:
        if directory in self._known_dirs:
            return
        for level in (directory.parent, directory):
            if not level.exists():
                level.mkdir(exist_ok=True)
                if self._power_safe:
                    _fsync_dir(level.parent)
        self._known_dirs.add(directory)


def _remove_side_files(path: Path) -> None:
    for suffix in _SIDE_FILES:
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
