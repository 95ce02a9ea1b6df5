"""Open databases, each an actor: one request at a time per database, many
databases in parallel, SQLite work on worker threads, off the event loop.

Connections are cached in a bounded LRU: past `open_databases`, the least
recently used idle ones are closed. Waiting requests are bounded per database
and per shard; past either bound a request is refused with RESOURCE_EXHAUSTED
instead of queueing without limit.

Work runs on worker threads, one request at a time per database. The one
exception is `inline` work (short reads on an open database): it is tried right
on the event loop first, saving the two thread hops, and gives up (RunOnWorker,
having changed nothing) on anything that may write, wait or take long.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import grpc

from loot.status import Fault
from shard.limits import Limits
from shard.storage import OpenDatabase, Storage

# Worker threads running SQLite: each converts one result at a time (the memory budget counts them).
THREADS = 8
T = TypeVar("T")
Work = Callable[[OpenDatabase], T]


class RunOnWorker(Exception):
    """Raised by inline work that gave up, having changed nothing: run the request on a worker thread."""


class _Actor:
    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        # Held while SQLite runs on the connection. The asyncio lock alone is not enough: a cancelled
        # call releases it while its work may still run on a worker thread.
        self.in_use = threading.Lock()
        self.database: OpenDatabase | None = None
        self.pending = 0  # requests waiting for or holding the lock


class Databases:
    def __init__(self, storage: Storage, limits: Limits = Limits(), threads: int = THREADS):
        self.storage = storage
        self.limits = limits
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="sqlite")
        self._actors: OrderedDict[str, _Actor] = OrderedDict()
        self._pending = 0
        self._hits = 0
        self._misses = 0
        self._closed = False
        # Checked again once a request holds its database: ownership may have moved while it waited (a fence).
        self.still_owned: Callable[[str], None] = lambda database_id: None

    def stats(self) -> dict[str, int]:
        """For metrics: open connections, requests that found their database open or not, requests waiting."""
        running = sum(1 for actor in self._actors.values() if actor.lock.locked())
        return {"open": sum(1 for actor in self._actors.values() if actor.database is not None),
                "hits": self._hits, "misses": self._misses, "queued": self._pending - running}

    async def run(self, database_id: str, work: Work[T], schema_claim: str = "", inline: Work[T] | None = None) -> T:
        """Run `work(database)` alone on the database, on a worker thread; create the database if new.

        If the database is open, `inline(database)` is tried first, on the event loop: it must raise
        RunOnWorker, having changed nothing, before it writes, waits for a lock or runs long."""
        actor = self._admit(database_id)
        try:
            async with actor.lock:
                self.still_owned(database_id)
                if actor.database is None:
                    self._misses += 1
                else:
                    self._hits += 1
                if inline is not None:
                    result = self._run_inline(actor, inline)
                    if result is not _GAVE_UP:
                        return result
                return await asyncio.get_running_loop().run_in_executor(
                    self._pool, self._call, database_id, actor, work, schema_claim)
        finally:
            actor.pending -= 1
            self._pending -= 1
            if len(self._actors) > self.limits.open_databases:
                await self._evict_idle()

    def _admit(self, database_id: str) -> _Actor:
        actor = self._actors.get(database_id)
        if actor is None:
            actor = self._actors[database_id] = _Actor()
        self._actors.move_to_end(database_id)
        if self._pending >= self.limits.queued:
            raise _busy("the shard", self.limits.queued)
        if actor.pending >= self.limits.queued_per_database:
            raise _busy("this database", self.limits.queued_per_database)
        actor.pending += 1
        self._pending += 1
        return actor

    def _run_inline(self, actor: _Actor, inline: Work[T]) -> T | object:
        """`inline(database)` on the event loop, or _GAVE_UP if the database is not open or in use,
        or the work gave up."""
        if actor.database is None or not actor.in_use.acquire(blocking=False):
            return _GAVE_UP
        try:
            return inline(actor.database)
        except RunOnWorker:
            return _GAVE_UP
        finally:
            actor.in_use.release()

    def _call(self, database_id: str, actor: _Actor, work: Work[T], schema_claim: str) -> T:
        with actor.in_use:
            if actor.database is None:
                actor.database = self.storage.open(database_id, schema_claim)
            try:
                return work(actor.database)
            finally:
                if actor.database.destroyed:
                    actor.database = None

    async def fence(self, gone: Callable[[str], bool]) -> int:
        """Wait for the request in progress on each open database `gone` names, then close it;
        return how many. Requests still queued for it then fail `still_owned`."""
        fenced = [(key, actor) for key, actor in list(self._actors.items()) if gone(key)]
        for _, actor in fenced:
            actor.pending += 1  # not idle: eviction must not close it under us
            try:
                async with actor.lock:
                    if actor.database is not None:
                        database, actor.database = actor.database, None
                        await asyncio.get_running_loop().run_in_executor(
                            self._pool, _close_all, [(actor.in_use, database)])
            finally:
                actor.pending -= 1
        return len(fenced)

    async def _evict_idle(self) -> None:
        """Close the least recently used idle databases beyond the cache's size."""
        excess = len(self._actors) - self.limits.open_databases
        if self._closed:
            return
        oldest_first = ((key, actor) for key, actor in self._actors.items() if actor.pending == 0)
        idle = list(itertools.islice(oldest_first, excess))  # usually one: no walk over the whole cache
        for key, actor in idle:
            del self._actors[key]
        closing = [(actor.in_use, actor.database) for _, actor in idle if actor.database is not None]
        if closing:
            await asyncio.get_running_loop().run_in_executor(self._pool, _close_all, closing)

    async def close(self) -> None:
        """Close every database once no SQLite work runs any more.

        Called when the shutdown grace has run out, a cancelled call may have
        released its database's lock while its work still runs on a worker
        thread: closing waits for the worker threads, not for the locks."""
        self._closed = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, functools.partial(self._pool.shutdown, wait=True, cancel_futures=True))
        opened = [(actor.in_use, actor.database) for actor in self._actors.values() if actor.database is not None]
        self._actors.clear()
        await loop.run_in_executor(None, _close_all, opened)


_GAVE_UP = object()


def _close_all(databases: list[tuple[threading.Lock, OpenDatabase]]) -> None:
    """Close each database once nothing runs on it: a cancelled call's work may still hold `in_use`."""
    for in_use, database in databases:
        with in_use:
            database.close()


def _busy(what: str, bound: int) -> Fault:
    return Fault(grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_MANY_REQUESTS",
                 f"{what} already has {bound} requests waiting; retry later", limit=bound)
