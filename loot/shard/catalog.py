"""The shard's catalog: for each database it holds, whose it is (account, name, tenant), when it was
made and last written, its size and its current schema hash (docs/shard.md, "The catalog").

One small SQLite file per shard, DATA/catalog.db, so that listing an account's databases or
counting them is one indexed query instead of opening every file (ids are hashes: nothing else maps
a file back to its owner). A row is made durable before its database's file appears (creation, a
handoff's install) and removed only after the file is gone (destroy, retire): a crash in between
leaves a row without a file, which `forget_missing` drops when the shard starts; never a file
nobody can name.

Writes to a database only move its last write, size and schema hash: those are kept in memory and
written in one transaction at most once a second, and whenever the catalog is read (so a reader
sees them exact); a crash may lose the last second of them, never a row.

Each account's number of databases and their bytes on this shard are also kept in memory, moved by
every row added or removed and every size written, so that a quota (loot/shard/quotas.py) reads them
without a query.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import apsw

from loot.internal.v1 import shard_pb2

FILE = "catalog.db"  # not *.sqlite: every .sqlite file in a shard's directory is a database named by its id
_FLUSH_SECONDS = 1.0
_DDL = """
CREATE TABLE IF NOT EXISTS databases (database_id TEXT PRIMARY KEY, account TEXT NOT NULL, name TEXT NOT NULL,
  tenant TEXT NOT NULL, created REAL NOT NULL, last_write REAL NOT NULL, bytes INTEGER NOT NULL,
  schema_hash TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS databases_in_order ON databases (account, name, tenant);
"""
_COLUMNS = "database_id, account, name, tenant, created, last_write, bytes, schema_hash"


@dataclass(frozen=True)
class Identity:
    """Whose a database is: what its id is derived from (loot/ids.py)."""

    account: str
    name: str
    tenant: str

    @classmethod
    def of(cls, shard_context: shard_pb2.Context) -> Identity:
        """The identity a request's verified context names."""
        return cls(shard_context.account, shard_context.name, shard_context.tenant)


@dataclass(frozen=True)
class Entry:
    database_id: str
    account: str
    name: str
    tenant: str
    created: float  # seconds since the epoch
    last_write: float
    bytes: int
    schema_hash: str  # hex SHA-256 of the current schema claim; empty when none was applied


@dataclass
class Usage:
    """One account's databases on this shard, and their bytes (the sum of their catalog sizes)."""

    databases: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class Group:
    """The census of one (name, schema hash): how many databases, and their bytes."""

    name: str
    schema_hash: str
    databases: int
    bytes: int


class Catalog:
    def __init__(self, root: Path, power_safe: bool):
        """`power_safe`: rows made or removed are fsynced before the call returns (durability full)."""
        self.path = root / FILE
        self._power_safe = power_safe
        self._conn = apsw.Connection(str(self.path))
        self._conn.set_busy_timeout(5000)
        self._conn.pragma("journal_mode", "wal")
        # Commits are not synced by SQLite: `_sync` fsyncs the WAL once for every row added meanwhile,
        # so concurrent creations share one fsync instead of queueing one each behind the lock.
        self._conn.pragma("synchronous", "normal")
        self._conn.execute(_DDL)
        if power_safe:  # the WAL file is new: its name must survive a power loss too
            _fsync(root)
        self._lock = threading.Lock()  # one connection, used by every worker thread
        self._sync_lock = threading.Lock()
        self._committed = 0  # row changes committed, and how many of them are known synced
        self._synced = 0
        # database id -> last write, bytes, schema hash, and its account (which the usage needs)
        self._pending: dict[str, tuple[float, int, str, str]] = {}
        self._flushed_at = time.monotonic()
        self._usage: dict[str, Usage] = {}  # account -> its databases here; no entry for an account with none
        for account, databases, bytes_ in self._conn.execute(
                "SELECT account, count(*), sum(bytes) FROM databases GROUP BY account"):
            self._usage[account] = Usage(databases, bytes_)

    def usage(self, account: str) -> Usage:
        """The account's databases here and their bytes, as of the last row change or write (read-only)."""
        return self._usage.get(account) or Usage()

    def usages(self) -> list[tuple[str, Usage]]:
        """Every account with a database here, and its usage (a copy, for metrics)."""
        with self._lock:
            return [(account, Usage(usage.databases, usage.bytes)) for account, usage in self._usage.items()]

    def add(self, entry: Entry, admit: Callable[[Usage], None] | None = None) -> None:
        """Record a database about to appear (made or moved here); durable on return. `admit(usage)`, given
        the account's usage before it, may refuse it by raising: checked and recorded under one lock, so
        that creations running at once never both pass a limit one of them reaches."""
        with self._lock:
            self._forget_usage(entry.database_id)  # a row replaced: its old size no longer counts
            if admit is not None:
                admit(self.usage(entry.account))
            usage = self._usage.setdefault(entry.account, Usage())
            usage.databases += 1
            usage.bytes += entry.bytes
            self._conn.execute(f"INSERT OR REPLACE INTO databases ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                               (entry.database_id, entry.account, entry.name, entry.tenant, entry.created,
                                entry.last_write, entry.bytes, entry.schema_hash))
            self._pending.pop(entry.database_id, None)
            self._committed += 1
            mine = self._committed
        self._sync(mine)

    def remove(self, database_id: str) -> None:
        """Forget a database whose file is gone (destroyed, or handed off); durable on return."""
        with self._lock:
            self._forget_usage(database_id)
            self._pending.pop(database_id, None)
            self._conn.execute("DELETE FROM databases WHERE database_id = ?", (database_id,))
            self._committed += 1
            mine = self._committed
        self._sync(mine)

    def wrote(self, database_id: str, bytes_: int, schema_hash: str) -> None:
        """A request changed the database: its last write is now (written out within a second)."""
        with self._lock:
            owner = self._owner_and_bytes(database_id)
            if owner is not None:  # else a database this catalog does not name: nothing to record
                self._usage[owner[0]].bytes += bytes_ - owner[1]
                self._pending[database_id] = (time.time(), bytes_, schema_hash, owner[0])
            if time.monotonic() - self._flushed_at >= _FLUSH_SECONDS:
                try:
                    self._flush()
                except apsw.BusyError:  # another process holds the file (the replicator): the request's
                    pass                # outcome stands, the marks stay pending for the next flush

    def get(self, database_id: str) -> Entry | None:
        with self._lock:
            self._flush()
            row = self._conn.execute(f"SELECT {_COLUMNS} FROM databases WHERE database_id = ?",
                                     (database_id,)).fetchone()
        return None if row is None else Entry(*row)

    def page(self, account: str, name: str, tenant_prefix: str, after: tuple[str, str] | None,
             limit: int) -> list[Entry]:
        """Up to `limit` of the account's databases in (name, tenant) order, past `after`; `name`
        (exact) and `tenant_prefix` narrow it when not empty."""
        where, params = ["account = ?"], [account]
        if name:
            where.append("name = ?")
            params.append(name)
        if tenant_prefix:
            where.append("substr(tenant, 1, length(?)) = ?")
            params += [tenant_prefix, tenant_prefix]
        if after is not None:
            where.append("(name, tenant) > (?, ?)")
            params += list(after)
        sql = (f"SELECT {_COLUMNS} FROM databases WHERE {' AND '.join(where)} "
               "ORDER BY account, name, tenant LIMIT ?")
        with self._lock:
            self._flush()
            return [Entry(*row) for row in self._conn.execute(sql, (*params, limit))]

    def census(self, account: str, name: str = "") -> list[Group]:
        """The account's databases counted per (name, schema hash)."""
        sql = ("SELECT name, schema_hash, count(*), sum(bytes) FROM databases WHERE account = ?"
               + (" AND name = ?" if name else "") + " GROUP BY name, schema_hash ORDER BY name, schema_hash")
        with self._lock:
            self._flush()
            return [Group(*row) for row in self._conn.execute(sql, (account, name) if name else (account,))]

    def ids(self) -> list[str]:
        with self._lock:
            return [row[0] for row in self._conn.execute("SELECT database_id FROM databases")]

    def forget_missing(self, exists: Callable[[str], bool]) -> int:
        """Drop the rows whose file is gone (a crash between a row and its file); how many."""
        missing = [database_id for database_id in self.ids() if not exists(database_id)]
        for database_id in missing:
            self.remove(database_id)
        return len(missing)

    def close(self) -> None:
        with self._lock:
            self._flush()
            self._conn.close()

    def _owner_and_bytes(self, database_id: str) -> tuple[str, int] | None:
        """The database's account and its size as counted in its usage (the caller holds the lock)."""
        pending = self._pending.get(database_id)
        if pending is not None:  # most writes: no query
            return pending[3], pending[1]
        row = self._conn.execute("SELECT account, bytes FROM databases WHERE database_id = ?", (database_id,)).fetchone()
        return None if row is None else (row[0], row[1])

    def _forget_usage(self, database_id: str) -> None:
        """Take the database out of its account's usage (the caller holds the lock, and removes its row)."""
        owner = self._owner_and_bytes(database_id)
        if owner is None:
            return
        account, bytes_ = owner
        usage = self._usage[account]
        usage.databases -= 1
        usage.bytes -= bytes_
        if usage.databases == 0:
            del self._usage[account]

    def _flush(self) -> None:
        """Write out the pending last writes (the caller holds the lock)."""
        self._flushed_at = time.monotonic()
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        try:
            with self._conn:
                self._conn.executemany(
                    "UPDATE databases SET last_write = ?, bytes = ?, schema_hash = ? WHERE database_id = ?",
                    [(at, size, schema_hash, database_id) for database_id, (at, size, schema_hash, _) in pending.items()])
        except apsw.Error:
            self._pending = {**pending, **self._pending}  # kept, newer marks first, for the next flush
            raise

    def _sync(self, through: int) -> None:
        """Make every row change up to number `through` durable, with one fsync for all those waiting."""
        if not self._power_safe:
            return
        with self._sync_lock:
            if self._synced >= through:
                return  # another thread's fsync, begun after our commit, covered it
            with self._lock:
                covered = self._committed
            _fsync(Path(f"{self.path}-wal"))
            self._synced = covered


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
