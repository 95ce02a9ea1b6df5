"""Open databases, each an actor: one request at a time per database, many
databases in parallel, SQLite work on worker threads, off the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import apsw

from shard.storage import Storage

T = TypeVar("T")


class _Database:
    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.conn: apsw.Connection | None = None


class Databases:
    def __init__(self, storage: Storage, threads: int = 8):
        self.storage = storage
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="sqlite")
        self._open: dict[str, _Database] = {}
        self._hits = self._misses = self._queued = 0

    async def run(self, database_id: str, work: Callable[[apsw.Connection], T]) -> T:
        """Run `work(conn)` on the database's connection, alone, on a worker thread."""
        database = self._open.setdefault(database_id, _Database())
        self._queued += 1
        try:
            await database.lock.acquire()
        finally:
            self._queued -= 1
        try:
            if database.conn is None:
                self._misses += 1
            else:
                self._hits += 1
            return await asyncio.get_running_loop().run_in_executor(self._pool, self._call, database_id, database, work)
        finally:
            database.lock.release()

    def _call(self, database_id: str, database: _Database, work: Callable[[apsw.Connection], T]) -> T:
        if database.conn is None:
            database.conn = self.storage.open(database_id)
        return work(database.conn)

    def stats(self) -> dict[str, int]:
        """For metrics: open connections, connection reuse, requests waiting their database's turn."""
        return {"open": sum(database.conn is not None for database in self._open.values()),
                "hits": self._hits, "misses": self._misses, "queued": self._queued}

    async def close(self) -> None:
        for database in self._open.values():
            async with database.lock:
                if database.conn is not None:
                    database.conn.close()
                    database.conn = None
        self._pool.shutdown()
