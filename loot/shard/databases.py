"""Open databases, each an actor: one request at a time per database, many
databases in parallel, SQLite work on worker threads, off the event loop.

Connections are cached in a bounded LRU: past `open_databases`, the least
recently used idle ones are closed. Waiting requests are bounded per database
and per shard; past either bound a request is refused with RESOURCE_EXHAUSTED
instead of queueing without limit.

Work runs on worker threads (loot/shard/workers.py: shared fairly between accounts),
one request at a time per database. The one exception is `inline` work (short
reads on an open database): it is tried right on the event loop first, saving
the two thread hops, and gives up (RunOnWorker, having changed nothing) on
anything that may write, wait or take long.

A request holds its database from the moment it takes the lock until its work
on the worker thread has ended, even if its caller gave up meanwhile: a call
cancelled while its SQLite work runs never lets the next request in, nor the
LRU close the connection under it.

A `Lease` (an interactive transaction, docs/transactions.md) holds the database
across several works, each on a worker thread in its account's turn: the requests
behind it wait in the database's bounded queue, other databases never wait (no
worker is held between works), the LRU never closes it, and a fence revokes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import grpc

from loot.status import Fault
from loot.shard.active_set import ActiveSet
from loot.shard.catalog import Identity
from loot.shard.limits import Limits
from loot.shard.storage import OpenDatabase, Storage
from loot.shard.workers import Workers

T = TypeVar("T")
Work = Callable[[OpenDatabase], T]


class RunOnWorker(Exception):
    """Raised by inline work that gave up, having changed nothing: run the request on a worker thread."""


class _Actor:
    def __init__(self) -> None:
        self.lock = asyncio.Lock()  # held from admission until the request's work has ended
        # Held while SQLite runs on the connection, by whichever thread runs it (a worker, or the event
        # loop for inline work, which takes it without waiting).
        self.in_use = threading.Lock()
        self.database: OpenDatabase | None = None
        self.pending = 0  # requests waiting for or holding the lock
        self.lease: Lease | None = None  # the transaction holding the lock, if one does


class Databases:
    def __init__(self, storage: Storage, limits: Limits = Limits(), threads: int | None = None):
        """`threads` overrides `limits.workers` (tools and benchmarks)."""
        self.storage = storage
        self.limits = limits
        threads = threads or limits.workers
        self.workers = Workers(threads, min(threads, limits.account_workers))
        self._pool = self.workers.pool  # closing connections: the shard's own work, outside any account's share
        self._working: set[asyncio.Task] = set()  # work on worker threads, whether or not its caller still waits
        self._actors: OrderedDict[str, _Actor] = OrderedDict()
        self._pending = 0
        self._hits = 0
        self._misses = 0
        self._closed = False
        # Checked again once a request holds its database: ownership may have moved while it waited (a fence).
        self.still_owned: Callable[[str], None] = lambda database_id: None
        # With replication of the recently used (loot/shard/active_set.py): each request holds its database
        # in the replicator's set, which it joins before the request runs.
        self.active: ActiveSet | None = None

    def stats(self) -> dict[str, int]:
        """For metrics: open connections, requests that found their database open or not, requests waiting."""
        running = sum(1 for actor in self._actors.values() if actor.lock.locked())
        return {"open": sum(1 for actor in self._actors.values() if actor.database is not None),
                "hits": self._hits, "misses": self._misses, "queued": self._pending - running}

    async def run(self, database_id: str, work: Work[T], schema_claim: str = "", inline: Work[T] | None = None,
                  *, account: str = "", deadline: float | None = None, identity: Identity | None = None) -> T:
        """Run `work(database)` alone on the database, on a worker thread; create the database if new.

        If the database is open, `inline(database)` is tried first, on the event loop: it must raise
        RunOnWorker, having changed nothing, before it writes, waits for a lock or runs long.
        `deadline` (monotonic) bounds the wait for the database and a worker (DEADLINE_EXCEEDED, nothing
        ran); once on a worker, the work runs to its end, which the work itself keeps to the deadline.
        `identity` is whose the database is, recorded in the shard's catalog when this creates it."""
        actor = self._admit(database_id)
        working = None
        try:
            if actor.lock.locked():
                async with _before(deadline):
                    await actor.lock.acquire()
            else:
                await actor.lock.acquire()  # free: taken at once, no timer needed
            try:
                self.still_owned(database_id)
                await self._join(database_id)
                if actor.database is None:
                    self._misses += 1
                else:
                    self._hits += 1
                if inline is not None:
                    result = self._run_inline(actor, inline)
                    if result is not _GAVE_UP:
                        return result
                async with _before(deadline):
                    await self.workers.turn(account)
                working = asyncio.ensure_future(
                    self._on_worker(database_id, actor, functools.partial(_noting_writes, work), schema_claim, account,
                                    identity))
                self._working.add(working)
                working.add_done_callback(self._working.discard)
            finally:
                if working is None:
                    actor.lock.release()
        finally:
            if working is None:
                await self._leave(actor, database_id)
        return await asyncio.shield(working)  # a caller giving up leaves the work, and the database, to it

    async def lease(self, database_id: str, account: str, deadline: float | None,
                    identity: Identity | None = None) -> Lease:
        """Hold the database, as `run` does for one work, until `Lease.end`; `deadline` bounds the wait.
        `identity`, as for `run`: whose the database is, if the lease creates it."""
        actor = self._admit(database_id)
        try:
            async with _before(deadline):
                await actor.lock.acquire()
        except BaseException:
            await self._leave(actor, database_id)
            raise
        lease = actor.lease = Lease(self, database_id, actor, account, identity)
        try:
            self.still_owned(database_id)
            await self._join(database_id)
        except BaseException:
            await lease.end(None)
            raise
        return lease

    async def swap(self, database_id: str, change: Callable[[], T]) -> T:
        """Run `change()` on a worker thread with the database closed and held, to replace its files:
        its requests wait meanwhile (within their deadlines), every other database keeps serving."""
        actor = self._admit(database_id)
        try:
            await actor.lock.acquire()
            try:
                self.still_owned(database_id)
                await self._join(database_id)
                return await asyncio.get_running_loop().run_in_executor(self._pool, _closed_for, actor, change)
            finally:
                actor.lock.release()
        finally:
            await self._leave(actor, database_id)

    async def _on_worker(self, database_id: str, actor: _Actor, work: Work[T], schema_claim: str, account: str,
                         identity: Identity | None) -> T:
        """The work on a worker thread, then the database and the worker given back."""
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._pool, self._call, database_id, actor, work, schema_claim, identity)
        finally:
            self.workers.release(account)
            actor.lock.release()
            await self._leave(actor, database_id)

    async def _join(self, database_id: str) -> None:
        if self.active is not None:
            await self.active.join(database_id)

    async def _leave(self, actor: _Actor, database_id: str) -> None:
        actor.pending -= 1
        self._pending -= 1
        if self.active is not None:
            self.active.release(database_id)
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
        if self.active is not None:
            self.active.hold(database_id)
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

    def _call(self, database_id: str, actor: _Actor, work: Work[T], schema_claim: str,
              identity: Identity | None) -> T:
        with actor.in_use:
            if actor.database is None:
                actor.database = self.storage.open(database_id, schema_claim, identity)
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
            if actor.lease is not None:
                actor.lease.revoke()  # its transaction rolls back at its next step, or at once if idle
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


class Lease:
    """A database held across several works (see the module's docstring)."""

    def __init__(self, databases: Databases, database_id: str, actor: _Actor, account: str,
                 identity: Identity | None):
        self._databases = databases
        self._identity = identity
        self._database_id = database_id
        self._actor = actor
        self._account = account
        self._working: asyncio.Future | None = None
        self.revoked = asyncio.Event()  # set by a fence: the database is moving away

    def revoke(self) -> None:
        self.revoked.set()

    async def run(self, work: Work[T], schema_claim: str = "") -> T:
        """`work(database)` on a worker thread in the account's turn. A caller giving up leaves it running:
        `end` waits for it."""
        await self._databases.workers.turn(self._account)
        self._working = asyncio.get_running_loop().run_in_executor(
            self._databases._pool, self._databases._call, self._database_id, self._actor,
            functools.partial(_noting_writes, work), schema_claim, self._identity)
        self._working.add_done_callback(lambda _: self._databases.workers.release(self._account))
        return await asyncio.shield(self._working)

    def end(self, last: Work[None] | None) -> asyncio.Task:
        """Once the work in progress has ended, run `last` (if any, whatever else failed) and give the
        database back. A task of its own, so that a caller cancelled again cannot skip a step."""
        return asyncio.ensure_future(self._end(last))

    async def _end(self, last: Work[None] | None) -> None:
        try:
            if self._working is not None:
                await asyncio.wait([self._working])
            if last is not None and self._actor.database is not None:
                await asyncio.get_running_loop().run_in_executor(
                    self._databases._pool, self._databases._call, self._database_id, self._actor,
                    functools.partial(_noting_writes, last, settling=True), "", self._identity)
        finally:
            self._actor.lease = None
            self._actor.lock.release()
            await self._databases._leave(self._actor, self._database_id)


_GAVE_UP = object()


def _noting_writes(work: Work[T], database: OpenDatabase, settling: bool = False) -> T:
    """`work(database)`, the catalog told if it changed the database (inline work only reads), held to its
    account's bytes quota if there is one. `settling`: the catalog is told whatever happened, as a
    transaction ends: a rollback takes back the pages its statements added, which their notes counted."""
    if database.storage.catalog is None:
        return work(database)
    database.limit_growth()
    mark = None if settling else database.write_mark()
    try:
        return work(database)
    except Fault as fault:  # statements' full databases are the sandbox's to explain; privileged SQL's are here
        if fault.reason != "DATABASE_FULL" or database.sandbox.full is None:
            raise
        raise database.sandbox.full(**fault.metadata) from None
    finally:
        database.note_writes(mark)


def _closed_for(actor: _Actor, change: Callable[[], T]) -> T:
    with actor.in_use:
        if actor.database is not None:
            database, actor.database = actor.database, None
            database.close()
        return change()


def _close_all(databases: list[tuple[threading.Lock, OpenDatabase]]) -> None:
    """Close each database once nothing runs on it: a cancelled call's work may still hold `in_use`."""
    for in_use, database in databases:
        with in_use:
            database.close()


@contextlib.asynccontextmanager
async def _before(deadline: float | None) -> AsyncIterator[None]:
    """A wait that ends at `deadline` (monotonic, as the event loop's clock), before the request ran."""
    try:
        async with asyncio.timeout_at(deadline):
            yield
    except TimeoutError:
        raise Fault(grpc.StatusCode.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED",
                    "the deadline passed before the request could run; nothing of it ran") from None


def _busy(what: str, bound: int) -> Fault:
    return Fault(grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_MANY_REQUESTS",
                 f"{what} already has {bound} requests waiting; retry later", limit=bound)
