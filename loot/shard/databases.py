"""Open databases, each an actor: one request at a time per database, many
databases in parallel, SQLite work on worker threads, off the event loop.

Connections are cached in a bounded LRU: past `open_databases`, the least
recently used idle ones are closed. Waiting requests are bounded per database
and per shard; past either bound a request is refused with RESOURCE_EXHAUSTED
instead of queueing without limit.

Work runs on worker threads (loot/shard/workers.py: shared fairly between accounts),
one request at a time per database. The one exception is `inline` work (short
reads on an open database): a request that finds its database idle tries it
right on the event loop first, saving the two thread hops, and gives up
(RunOnWorker, having changed nothing) on anything that may write, wait or take long.

Each database has one queue, in arrival order, of requests waiting for it: works
for a worker thread (a request that finds its database busy queues its work,
without an inline attempt), and holders that take the database on the event
loop (a lease, a swap, a fence). Works queued one after the other are drained by the worker thread that runs the first: once a work ends,
the same thread starts the next one queued, without a round trip through the
event loop in between, and hands results back in batches (one wakeup of the loop
for whatever ended since its last one). A drain holds one worker turn of the
database's account and gives it back after DRAIN works or when the queue holds
no work next (empty, or a holder's turn): the next works then wait for a worker
turn again, behind other accounts' (a flooded database never starves another
account's). Before each work a drain checks, on its thread, that the request's
deadline has not passed (else DEADLINE_EXCEEDED, nothing ran) and that the shard
still owns the database (a fence); a caller that gives up while its work waits
takes it out of the queue, so it never runs.

A request holds its database from the moment its turn comes until its work has
ended, even if its caller gave up meanwhile: a call cancelled while its SQLite
work runs never lets the next request in, nor the LRU close the connection under it.

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
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import grpc

from loot.status import Fault
from loot.shard.active_set import ActiveSet
from loot.shard.catalog import Identity
from loot.shard.limits import Limits
from loot.shard.storage import OpenDatabase, Storage
from loot.shard.workers import Workers

T = TypeVar("T")
Work = Callable[[OpenDatabase], T]

# Works one drain runs in a row before its worker turn goes back to the accounts waiting for one.
DRAIN = 16


class RunOnWorker(Exception):
    """Raised by inline work that gave up, having changed nothing: run the request on a worker thread."""


class _Job:
    """A request's work waiting in its database's queue; `future` (on the event loop) gets its outcome."""

    __slots__ = ("work", "schema_claim", "identity", "account", "deadline", "future")

    def __init__(self, work: Work, schema_claim: str, identity: Identity | None, account: str,
                 deadline: float | None):
        """`work` as a request gives it: run held to its account's quota, the catalog told what it wrote."""
        self.work, self.schema_claim, self.identity = functools.partial(_noting_writes, work), schema_claim, identity
        self.account, self.deadline = account, deadline
        self.future = asyncio.get_running_loop().create_future()


class _Holder:
    """A wait for the database on the event loop; `granted` once it holds it (set under the actor's mutex)."""

    __slots__ = ("future", "granted")

    def __init__(self, future: asyncio.Future):
        self.future = future
        self.granted = False


class _Actor:
    def __init__(self) -> None:
        # Guards `held` and `queue`: the event loop and a draining worker thread both change them.
        self.mutex = threading.Lock()
        self.held = False  # a request, a drain or a holder has the database; the rest wait in `queue`
        self.queue: deque[_Job | _Holder] = deque()
        # Held while SQLite runs on the connection, by whichever thread runs it (a worker, or the event
        # loop for inline work, which takes it without waiting).
        self.in_use = threading.Lock()
        self.database: OpenDatabase | None = None
        self.pending = 0  # requests queued or holding the database
        self.lease: Lease | None = None  # the transaction holding the database, if one does


class Databases:
    def __init__(self, storage: Storage, limits: Limits = Limits(), threads: int | None = None):
        """`threads` overrides `limits.workers` (tools and benchmarks)."""
        self.storage = storage
        self.limits = limits
        threads = threads or limits.workers
        self.workers = Workers(threads, min(threads, limits.account_workers))
        self._pool = self.workers.pool  # closing connections: the shard's own work, outside any account's share
        self._working: set[asyncio.Task] = set()  # dispatches waiting for a worker turn for their database's works
        self._actors: OrderedDict[str, _Actor] = OrderedDict()
        self._pending = 0
        self._hits = 0
        self._misses = 0
        self._closed = False
        # What drains hand back to the event loop, and whether a wakeup for it is on its way already.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._posting = threading.Lock()
        self._posted: list[tuple[Callable[..., None], tuple]] = []
        self._waking = False
        # Checked again once a request's turn has come: ownership may have moved while it waited (a fence).
        # Drains call it on their worker thread.
        self.still_owned: Callable[[str], None] = lambda database_id: None
        # With replication of the recently used (loot/shard/active_set.py): each request holds its database
        # in the replicator's set, which it joins before the request runs.
        self.active: ActiveSet | None = None

    def stats(self) -> dict[str, int]:
        """For metrics: open connections, requests that found their database open or not, requests waiting."""
        running = sum(1 for actor in self._actors.values() if actor.held)
        return {"open": sum(1 for actor in self._actors.values() if actor.database is not None),
                "hits": self._hits, "misses": self._misses, "queued": self._pending - running}

    async def run(self, database_id: str, work: Work[T], schema_claim: str = "", inline: Work[T] | None = None,
                  *, account: str = "", deadline: float | None = None, identity: Identity | None = None) -> T:
        """Run `work(database)` alone on the database, on a worker thread; create the database if new.

        If the database is open and idle, `inline(database)` is tried first, on the event loop: it must raise
        RunOnWorker, having changed nothing, before it writes, waits for a lock or runs long.
        `deadline` (monotonic) bounds the wait for the database and a worker (DEADLINE_EXCEEDED, nothing
        ran); once on a worker, the work runs to its end, which the work itself keeps to the deadline.
        `identity` is whose the database is, recorded in the shard's catalog when this creates it."""
        actor = self._admit(database_id)
        with actor.mutex:
            busy = actor.held
            if busy:
                job = _Job(work, schema_claim, identity, account, deadline)
                actor.queue.append(job)
            else:
                actor.held = True
        if busy:
            return await self._outcome(database_id, actor, job)
        return await self._holding(database_id, actor, work, schema_claim, inline, account, deadline, identity)

    async def _holding(self, database_id: str, actor: _Actor, work: Work[T], schema_claim: str,
                       inline: Work[T] | None, account: str, deadline: float | None, identity: Identity | None) -> T:
        """A request that found its database idle, holding it: inline, or else the first work of a drain."""
        job = None
        try:
            self.still_owned(database_id)
            await self._join(database_id)
            if inline is not None:
                result = self._run_inline(actor, inline)
                if result is not _GAVE_UP:
                    return result
            async with _before(deadline):
                await self.workers.turn(account)
            job = _Job(work, schema_claim, identity, account, deadline)
            with actor.mutex:
                actor.queue.appendleft(job)  # first: the database is this request's
            self._start_drain(database_id, actor, account)
        finally:
            if job is None:
                self._release(database_id, actor)
                await self._leave(actor, database_id)
        return await self._outcome(database_id, actor, job)

    async def _outcome(self, database_id: str, actor: _Actor, job: _Job) -> Any:
        """The outcome of a queued work. A caller that gives up (or whose deadline passes) before a drain
        took its work takes it out of the queue: it never runs. Once taken, it runs to its end."""
        try:
            try:
                if job.deadline is None:
                    return await asyncio.shield(job.future)
                async with asyncio.timeout_at(job.deadline):
                    return await asyncio.shield(job.future)
            except TimeoutError:
                if self._withdraw(database_id, actor, job):
                    raise _late() from None
                return await job.future  # taken in time: it ends by the deadline, its own to keep
            except asyncio.CancelledError:
                self._withdraw(database_id, actor, job)
                raise
        finally:
            if len(self._actors) > self.limits.open_databases:
                await self._evict_idle()

    def _withdraw(self, database_id: str, actor: _Actor, job: _Job) -> bool:
        """Take a work out of its queue: True if it was still waiting there (it will never run)."""
        with actor.mutex:
            try:
                actor.queue.remove(job)
            except ValueError:
                return False
        self._left(actor, database_id)
        return True

    def _start_drain(self, database_id: str, actor: _Actor, account: str) -> None:
        """The database held, a worker turn taken for `account`: a drain of the works at the queue's head."""
        self._loop = asyncio.get_running_loop()
        self._pool.submit(self._drain, database_id, actor, account)

    def _drain(self, database_id: str, actor: _Actor, account: str) -> None:
        """On a worker thread: the works at the head of the database's queue, one after the other, each
        outcome handed back to the event loop once the next one is taken (see the module's docstring)."""
        ran, ended, hand_over = 0, None, True
        try:
            while True:
                with actor.mutex:
                    job, hand_over = self._next_work(database_id, actor, account, ran)
                if ended is not None:
                    self._post(self._settle, database_id, actor, *ended)
                if job is None:
                    return
                ended = (job, *self._attempt(database_id, actor, job))
                ran += 1
        finally:
            self._post(self._drained, database_id, actor, account, hand_over)

    def _next_work(self, database_id: str, actor: _Actor, account: str, ran: int) -> tuple[_Job | None, bool]:
        """Under the actor's mutex: the next work this drain runs; or None, and whether the database goes
        to the next in its queue (True) or is idle (False)."""
        if not actor.queue:
            actor.held = False
            return None, False
        head = actor.queue[0]
        if (ran >= DRAIN or not isinstance(head, _Job) or head.account != account
                or (ran and self.active is not None and database_id not in self.active)):  # joins on the loop
            return None, True
        return actor.queue.popleft(), False

    def _attempt(self, database_id: str, actor: _Actor, job: _Job) -> tuple[bool | None, bool, Any]:
        """On the drain's thread: (whether the database was open, or None if the work did not run; whether
        it succeeded; its result or exception). Nothing runs past the deadline or for a database moved away."""
        try:
            if job.deadline is not None and time.monotonic() >= job.deadline:
                raise _late()
            self.still_owned(database_id)
        except Exception as refusal:
            return None, False, refusal
        hit = actor.database is not None
        try:
            return hit, True, self._call(database_id, actor, job.work, job.schema_claim, job.identity)
        except BaseException as error:  # the caller's, whatever it is
            return hit, False, error

    def _post(self, callback: Callable[..., None], *args: Any) -> None:
        """From a worker thread: `callback(*args)` on the event loop, in order, one wakeup of the loop for
        everything posted since its last."""
        with self._posting:
            self._posted.append((callback, args))
            if self._waking:
                return
            self._waking = True
        self._loop.call_soon_threadsafe(self._deliver)

    def _deliver(self) -> None:
        with self._posting:
            posted, self._posted, self._waking = self._posted, [], False
        for callback, args in posted:
            try:
                callback(*args)
            except Exception as error:  # one failing must not strand the others' callers
                self._loop.call_exception_handler({"message": "delivering a drain's outcome", "exception": error})

    def _settle(self, database_id: str, actor: _Actor, job: _Job, hit: bool | None, ok: bool, value: Any) -> None:
        """On the event loop: a drained work's outcome to its caller (if it still waits)."""
        if hit is not None:
            if hit:
                self._hits += 1
            else:
                self._misses += 1
        self._left(actor, database_id)
        if not job.future.done():
            if ok:
                job.future.set_result(value)
            else:
                job.future.set_exception(value)

    def _drained(self, database_id: str, actor: _Actor, account: str, hand_over: bool) -> None:
        """On the event loop, after a drain: its worker turn given back, the database to the next if it is
        not idle."""
        self.workers.release(account)
        if hand_over:
            self._release(database_id, actor)

    async def _hold(self, database_id: str, actor: _Actor, deadline: float | None) -> None:
        """Hold the database on the event loop, in its queue's order; `deadline`: DEADLINE_EXCEEDED."""
        with actor.mutex:
            if not actor.held:
                actor.held = True
                return
            holder = _Holder(asyncio.get_running_loop().create_future())
            actor.queue.append(holder)
        try:
            async with _before(deadline):
                await holder.future
        except BaseException:
            with actor.mutex:
                if not holder.granted:
                    actor.queue.remove(holder)
            if holder.granted:  # just as its waiter gave up: pass it on
                self._release(database_id, actor)
            raise

    @contextlib.asynccontextmanager
    async def _held(self, database_id: str, actor: _Actor) -> AsyncIterator[None]:
        """The database held on the event loop for the block (in its queue's order), then passed on."""
        await self._hold(database_id, actor, None)
        try:
            yield
        finally:
            self._release(database_id, actor)

    def _release(self, database_id: str, actor: _Actor) -> None:
        """On the event loop: the database, held, to the next in its queue: a holder, or a dispatch of the
        works at its head; idle if none."""
        with actor.mutex:
            if not actor.queue:
                actor.held = False
                return
            head = actor.queue[0]
            if isinstance(head, _Holder):
                actor.queue.popleft()
                head.granted = True
        if isinstance(head, _Holder):
            if not head.future.done():
                head.future.set_result(None)
            return
        dispatch = asyncio.ensure_future(self._dispatch(database_id, actor, head.account))
        self._working.add(dispatch)
        dispatch.add_done_callback(self._working.discard)

    async def _dispatch(self, database_id: str, actor: _Actor, account: str) -> None:
        """The database's turn for the works at the head of its queue: a worker turn, then a drain. A work
        whose caller gives up meanwhile leaves the queue (the drain finds the next, or none)."""
        await self._join(database_id)
        await self.workers.turn(account)
        self._start_drain(database_id, actor, account)

    async def lease(self, database_id: str, account: str, deadline: float | None,
                    identity: Identity | None = None) -> Lease:
        """Hold the database, as `run` does for one work, until `Lease.end`; `deadline` bounds the wait.
        `identity`, as for `run`: whose the database is, if the lease creates it."""
        actor = self._admit(database_id)
        try:
            await self._hold(database_id, actor, deadline)
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
            async with self._held(database_id, actor):
                self.still_owned(database_id)
                await self._join(database_id)
                return await asyncio.get_running_loop().run_in_executor(self._pool, _closed_for, actor, change)
        finally:
            await self._leave(actor, database_id)

    async def _join(self, database_id: str) -> None:
        if self.active is not None:
            await self.active.join(database_id)

    def _left(self, actor: _Actor, database_id: str) -> None:
        actor.pending -= 1
        self._pending -= 1
        if self.active is not None:
            self.active.release(database_id)

    async def _leave(self, actor: _Actor, database_id: str) -> None:
        self._left(actor, database_id)
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
        gave_up = False
        try:
            return inline(actor.database)
        except RunOnWorker:
            gave_up = True
            return _GAVE_UP
        finally:
            actor.in_use.release()
            if not gave_up:  # answered here, or refused: it found its database open (else a worker counts it)
                self._hits += 1

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
        for key, actor in fenced:
            if actor.lease is not None:
                actor.lease.revoke()  # its transaction rolls back at its next step, or at once if idle
            actor.pending += 1  # not idle: eviction must not close it under us
            try:
                async with self._held(key, actor):
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
        oldest_first = ((key, actor) for key, actor in self._actors.items() if actor.pending == 0 and not actor.held)
        idle = list(itertools.islice(oldest_first, excess))  # usually one: no walk over the whole cache
        for key, actor in idle:
            del self._actors[key]
        closing = [(actor.in_use, actor.database) for _, actor in idle if actor.database is not None]
        if closing:
            await asyncio.get_running_loop().run_in_executor(self._pool, _close_all, closing)

    async def close(self) -> None:
        """Close every database once no SQLite work runs any more.

        Called when the shutdown grace has run out, a cancelled call's work may still run on a worker
        thread: closing waits for the worker threads. Works still queued are cancelled, never run."""
        self._closed = True
        for dispatch in list(self._working):
            dispatch.cancel()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, functools.partial(self._pool.shutdown, wait=True, cancel_futures=True))
        for actor in self._actors.values():
            for waiting in actor.queue:
                if isinstance(waiting, _Job):
                    waiting.future.cancel()
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
        self._working = self._on_worker(functools.partial(_noting_writes, work), schema_claim)
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
                await self._on_worker(functools.partial(_noting_writes, last, settling=True))
        finally:
            self._actor.lease = None
            self._databases._release(self._database_id, self._actor)
            await self._databases._leave(self._actor, self._database_id)

    def _on_worker(self, work: Work[T], schema_claim: str = "") -> asyncio.Future:
        """`work(database)` on a worker thread (the database opened first if it is not)."""
        return asyncio.get_running_loop().run_in_executor(self._databases._pool, self._databases._call,
                                                          self._database_id, self._actor, work, schema_claim,
                                                          self._identity)


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
        raise _late() from None


def _late() -> Fault:
    return Fault(grpc.StatusCode.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED",
                 "the deadline passed before the request could run; nothing of it ran")


def _busy(what: str, bound: int) -> Fault:
    return Fault(grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_MANY_REQUESTS",
                 f"{what} already has {bound} requests waiting; retry later", limit=bound)
