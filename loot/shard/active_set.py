"""Which databases Litestream replicates: the recently used ones, not the whole shard.

Litestream holds a connection, a read transaction and five open files per database it replicates,
and polls each every second (docs/backups.md: 0.37 MiB and 0.3 ms of CPU a second per database),
so a shard of 10,000 cannot have all of them in its set. A database joins the set before a request
runs on it (its write is then shipped within the lag, as in a whole-directory set) and leaves once
nothing has used it for `window` seconds: leaving is a sync that waits for the upload, then
Litestream's unregister, so an idle database's replica holds its latest state. A sync or unregister
that fails leaves the database wanted: it joins again and leaves later.

Databases Litestream may not have shipped when the shard starts (never replicated; or in the set when
the shard last stopped, as after a crash: a journal beside Litestream's state lists who joined and
left) are registered and unregistered once, a few at a time, in the background: their replica then
holds their state too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from loot.shard import litestream_control as control

log = logging.getLogger("loot.shard.active_set")

CATCH_UP_CONCURRENCY = 4
JOURNAL_BYTES = 1 << 20
META_SUFFIX = "-litestream"  # Litestream's record of a database: DATA/ab/cd/.<id>.sqlite-litestream/


@dataclass
class _State:
    holds: int = 0  # requests admitted and not yet left
    last: float = 0.0  # monotonic time of the last admission or leave
    joined: bool = False  # in Litestream's set (as far as the shard knows)
    asked: bool = False  # joining or joined: a registration sent may go through even if it failed here


class ActiveSet:
    """The databases in Litestream's set; `hold`/`release` around every request, `join` before it runs."""

    def __init__(self, socket: str, path_of: Callable[[str], Path], replica_url: Callable[[str], str],
                 window: float, journal: Path, limit: int):
        """`limit`: the most databases in the set (Litestream's open files): past it, the least recently
        used idle ones leave early."""
        self.socket = socket
        self.journal = journal
        self.limit = limit
        self.path_of = path_of
        self.replica_url = replica_url
        self.window = window
        self._states: dict[str, _State] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: list[asyncio.Task] = []
        self._candidates: list[str] = []

    def hold(self, database_id: str) -> None:
        state = self._states.setdefault(database_id, _State())
        state.holds += 1
        state.last = time.monotonic()

    def release(self, database_id: str) -> None:
        state = self._states.get(database_id)
        if state is None:
            return
        state.holds -= 1
        state.last = time.monotonic()
        if not state.joined and self.path_of(database_id).exists():  # made by this request: joins now
            self._spawn(self.join(database_id))

    async def join(self, database_id: str) -> None:
        """Put a held database in Litestream's set, if it is not; a failure is logged and retried by the
        sweep (the request goes on: its write reaches the replica once Litestream takes the database)."""
        state = self._states.get(database_id)
        if state is None or state.joined or not self.path_of(database_id).exists():
            return
        async with self._lock(database_id):
            if state.joined:
                return
            state.asked = True  # counted in the set from now: joins at the same time see each other
            await self._make_room()
            try:
                self._note("+", database_id)  # before: a crash from here on finds it in the journal
                await control.register(self.socket, str(self.path_of(database_id)), self.replica_url(database_id))
                state.joined = True
            except control.ControlError as error:
                log.warning("database %s not in the replicator's set yet: %s", database_id, error)

    def start(self, candidates: Iterable[str]) -> None:
        """Sweep from now on; `candidates` (see `unshipped`) are checked once Litestream listens."""
        self._candidates = list(candidates)
        self._spawn(self._sweep())

    def litestream_started(self) -> None:
        """Litestream (re)started, listening, with an empty set: every wanted database joins again, and
        the first time, the candidates are checked."""
        for state in self._states.values():
            state.joined = False
        for database_id in list(self._states):
            self._spawn(self.join(database_id))
        candidates, self._candidates = self._candidates, []
        if candidates:
            self._spawn(self._catch_up(candidates))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def __contains__(self, database_id: str) -> bool:
        state = self._states.get(database_id)
        return state is not None and state.joined

    async def _sweep(self) -> None:
        """Every few seconds: idle databases leave, wanted ones that failed to join try again."""
        while True:
            await asyncio.sleep(min(self.window / 2, 10.0))
            self._compact_journal()
            now = time.monotonic()
            for database_id, state in list(self._states.items()):
                if not state.joined and self.path_of(database_id).exists():
                    await self.join(database_id)  # failed before: its changes are not shipped yet
                elif state.holds == 0 and now - state.last >= self.window:
                    await self._leave(database_id, state)

    async def _make_room(self) -> None:
        """Past the limit (counting the databases joining now), the least recently used idle ones leave."""
        members = [(state.last, database_id, state) for database_id, state in self._states.items() if state.asked]
        if len(members) <= self.limit:
            return
        # One joining or leaving now is left alone: no two joins wait on each other.
        idle = sorted(entry for entry in members if entry[2].holds == 0 and not self._busy(entry[1]))
        for _, database_id, state in idle[:len(members) - self.limit]:
            await self._leave(database_id, state, early=True)

    async def _leave(self, database_id: str, state: _State, early: bool = False) -> None:
        async with self._lock(database_id):
            if self._states.get(database_id) is not state:
                return  # left meanwhile (another join made room with it)
            if state.holds or not (early or time.monotonic() - state.last >= self.window):
                return  # used again meanwhile
            path = self.path_of(database_id)
            try:
                if state.asked and await control.sync(self.socket, str(path)):
                    await control.unregister(self.socket, str(path))
                elif state.asked and not state.joined and path.exists():
                    state.last = time.monotonic()  # its registration may still be under way: it joins, leaves later
                    return
            except control.ControlError as error:
                if path.exists():  # its last changes may not be shipped: it joins again, leaves later
                    log.warning("database %s stays replicated: %s", database_id, error)
                    state.joined = False
                    state.last = time.monotonic()
                    return
            del self._states[database_id]
            self._locks.pop(database_id, None)
            self._note("-", database_id)

    async def _catch_up(self, candidates: list[str]) -> None:
        """Ship, once, each database Litestream may not have shipped (register, then unregister: the
        unregister's final sync), a few at a time; one in use meanwhile is left to the sweep."""
        queue: asyncio.Queue[str] = asyncio.Queue()
        for database_id in candidates:
            queue.put_nowait(database_id)

        async def worker() -> None:
            while not queue.empty():
                database_id = queue.get_nowait()
                if database_id in self._states:
                    continue
                self.hold(database_id)
                try:
                    await self.join(database_id)
                finally:
                    self.release(database_id)
                state = self._states.get(database_id)
                if state is not None and state.joined and state.holds == 0:
                    state.last = 0.0  # idle at once: leave now
                    await self._leave(database_id, state)

        await asyncio.gather(*(worker() for _ in range(CATCH_UP_CONCURRENCY)))
        log.info("the replica holds the state of the %d databases checked at start", len(candidates))

    def _note(self, change: str, database_id: str) -> None:
        with self.journal.open("a") as journal:
            journal.write(f"{change}{database_id}\n")
            journal.flush()
            os.fsync(journal.fileno())

    def _compact_journal(self) -> None:
        """Past JOURNAL_BYTES, the journal is rewritten as the databases now wanted."""
        if not self.journal.exists() or self.journal.stat().st_size < JOURNAL_BYTES:
            return
        fresh = self.journal.with_suffix(".new")
        fresh.write_text("".join(f"+{database_id}\n" for database_id in self._states))
        os.replace(fresh, self.journal)

    def _busy(self, database_id: str) -> bool:
        lock = self._locks.get(database_id)
        return lock is not None and lock.locked()

    def _lock(self, database_id: str) -> asyncio.Lock:
        return self._locks.setdefault(database_id, asyncio.Lock())

    def _spawn(self, work) -> None:
        task = asyncio.create_task(work)
        self._tasks.append(task)
        task.add_done_callback(lambda done: done in self._tasks and self._tasks.remove(done))


def unshipped(journal: Path, databases: Iterable[tuple[str, Path]]) -> list[str]:
    """Databases Litestream may not have shipped: in its set when the shard last stopped (per `journal`,
    which this starts afresh), or never replicated (no record of Litestream's beside the file)."""
    joined: set[str] = set()
    if journal.exists():
        for line in journal.read_text().splitlines():
            if line[:1] == "+":
                joined.add(line[1:])
            elif line[:1] == "-":
                joined.discard(line[1:])
    journal.write_text("")
    return [database_id for database_id, path in databases
            if database_id in joined or not path.with_name(f".{path.name}{META_SUFFIX}").exists()]
