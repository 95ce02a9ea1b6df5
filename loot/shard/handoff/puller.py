"""The new owner's side: find the databases that moved here, copy each from its previous
owner, and hold requests for them until their copy is in place.

Per epoch that gives this shard databases (a `Rebalance`):
- discovery: every other shard of this epoch and the one before is asked which database
  files it holds that this shard now owns (each answers only once fenced at this epoch);
- pulls: each such database is copied (Handoff.Copy) into a staging file, checked
  (`PRAGMA integrity_check`), installed with storage's fsync + rename, then the old owner is
  told to retire its file (Handoff.Confirm). Pulls run in the background with bounded
  concurrency (eager), and at once for a database a request is waiting for (lazy). Failures
  are retried with backoff until the next epoch.
- readiness: a request for a database with a pull under way waits for it; one for a database
  without a file here waits for discovery, then is either pulled or is new. Once everything is
  in place and confirmed the epoch is settled (written to DATA/handoff-settled, so a restart
  does not discover again) and requests pass straight through.

Precondition (docs/rebalancing.md): the next epoch is published only once every shard has
settled the current one, so each database has exactly one live file when an epoch begins.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path

import apsw
import grpc

from loot.internal.v1 import shard_pb2
from loot.json_files import read_json, write_json
from loot.membership import Membership, MembershipSource
from loot.status import Fault
from loot.shard.handoff import files
from loot.shard.handoff.peers import PeerUnknown, Peers
from loot.shard.handoff.progress import Progress
from loot.shard.storage import Storage

log = logging.getLogger("loot.handoff")
STATE_FILE = "handoff-state.json"
MAX_WAIT = 30.0  # seconds a request without a deadline waits for its database to arrive
BACKOFF = (0.1, 2.0)  # first and longest pause between retries of a failed call to another shard


class BadCopy(Exception):
    """A copy that arrived damaged: pulled again."""


class Puller:
    def __init__(self, name: str, membership: MembershipSource, storage: Storage, peers: Peers,
                 progress: Progress, concurrency: int = 4):
        self.name = name
        self.membership = membership
        self.storage = storage
        self.peers = peers
        self.progress = progress
        self.concurrency = concurrency
        self._state_file = storage.root / STATE_FILE
        # A pull cancelled by a newer epoch may still be installing on a worker thread while its successor
        # pulls again: the first copy in place wins, so a copy being served is never replaced.
        self._installing = threading.Lock()
        self.rebalance = self._resume(membership.current)
        membership.on_change(self._changed)

    def _resume(self, current: Membership) -> Rebalance:
        state = self._load_state()
        self.peers.learn(state.get("addresses", {}))
        self.peers.learn(current.shards)
        if self.membership.path is None:
            return Rebalance.settled(self, current.epoch)  # a fixed list: nothing ever moves
        if current.epoch == 0 or state.get("settled") == current.epoch:  # the first epoch: nothing came from anywhere
            self.settle(current.epoch)  # remember these shards: they are the previous owners of the next epoch
            return Rebalance.settled(self, current.epoch)
        if state.get("epoch") == current.epoch:
            return Rebalance(self, current.epoch, state["sources"])
        # Down while the epoch changed: the previous owners are among the shards it knew and the current ones.
        sources = sorted(set(state.get("addresses", {})) | set(current.shards))
        self._save_state({"epoch": current.epoch, "sources": sources,
                          "addresses": {**state.get("addresses", {}), **current.shards}})
        return Rebalance(self, current.epoch, sources)

    def start(self) -> None:
        self.rebalance.start()

    def _changed(self, new: Membership) -> None:
        old = self.membership.current
        self.peers.learn(new.shards)
        if new.epoch == old.epoch and self.rebalance.done.is_set():  # an address changed, nothing moved
            state = self._load_state()
            self._save_state({**state, "addresses": {**state.get("addresses", {}), **new.shards}})
            return
        previous = self.rebalance.sources if new.epoch == self.rebalance.epoch else old.shards
        sources = sorted(set(previous) | set(new.shards))  # the previous owners include removed shards
        self._save_state({"epoch": new.epoch, "sources": sources, "addresses": {**old.shards, **new.shards}})
        self.rebalance.stop()
        self.rebalance = Rebalance(self, new.epoch, sources)
        self.rebalance.start()

    async def ready(self, database_id: str, remaining: float | None) -> None:
        """Return once `database_id` may be opened here: its copy is in place or it is new."""
        if self.rebalance.done.is_set():
            return
        deadline = time.monotonic() + (MAX_WAIT if remaining is None else min(remaining, MAX_WAIT))
        while not await self.rebalance.wait_ready(database_id, deadline - time.monotonic()):
            if time.monotonic() >= deadline:
                raise Fault(grpc.StatusCode.UNAVAILABLE, "DATABASE_MOVING",
                            "the database is still being moved to this shard after a membership change; retry")

    def install(self, database_id: str, staging: Path, row: shard_pb2.CatalogRow | None = None) -> None:
        """Check a pulled copy and put it in place, with its catalog `row`, unless a copy already is
        (see `_installing`)."""
        try:
            conn = apsw.Connection(str(staging), flags=apsw.SQLITE_OPEN_READONLY)
            try:
                verdict = [row[0] for row in conn.execute("PRAGMA integrity_check")]
            finally:
                conn.close()
        except apsw.Error as error:
            raise BadCopy(f"the copy is not a readable database: {error}") from None
        if verdict != ["ok"]:
            raise BadCopy(f"the copy failed its integrity check: {verdict[:3]}")
        with self._installing:
            if not self.storage.path(database_id).exists():
                self.storage.install(database_id, staging, files.catalog_entry(database_id, row))

    def settle(self, epoch: int) -> None:
        """Nothing more to move here under `epoch`: a restart need not ask around again."""
        self._save_state({"epoch": epoch, "settled": epoch, "sources": [], "addresses": self.membership.current.shards})

    def _load_state(self) -> dict:
        return read_json(self._state_file) or {}

    def _save_state(self, state: dict) -> None:
        write_json(self._state_file, state)


class Rebalance:
    """One epoch's moves into this shard."""

    def __init__(self, puller: Puller, epoch: int, sources: list[str]):
        self.puller = puller
        self.epoch = epoch
        self.sources = [name for name in sources if name != puller.name]
        self.discovered = asyncio.Event()
        self.done = asyncio.Event()
        self.pulls: dict[str, _Pull] = {}
        self._limit = asyncio.Semaphore(puller.concurrency)
        self._task: asyncio.Task | None = None

    @classmethod
    def settled(cls, puller: Puller, epoch: int) -> Rebalance:
        rebalance = cls(puller, epoch, [])
        rebalance.discovered.set()
        rebalance.done.set()
        puller.progress.epoch, puller.progress.settled = epoch, True
        return rebalance

    def start(self) -> None:
        if not self.done.is_set():
            progress = self.puller.progress
            progress.epoch, progress.settled, progress.to_pull = self.epoch, False, 0
            self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        """A newer epoch took over: stop, and wake every waiter so it looks at the new one."""
        if self._task is not None:
            self._task.cancel()
        for pull in self.pulls.values():
            pull.stop()
        self.discovered.set()
        self.done.set()

    async def wait_ready(self, database_id: str, remaining: float) -> bool:
        """True when the database may be opened now; False after waiting up to `remaining` seconds."""
        if remaining <= 0 or self is not self.puller.rebalance:
            return False
        pull = self.pulls.get(database_id)
        if pull is not None:
            pull.start()  # lazy: a request waits for it, so it does not queue behind the background walk
            arrived = await _wait(pull.arrived, remaining)
            return arrived and self is self.puller.rebalance  # a newer epoch woke us: look again under it
        if self.discovered.is_set() or self.puller.storage.path(database_id).exists():
            return True  # new, or already here (each database has one live file when an epoch begins)
        await _wait(self.discovered, remaining)
        return False  # look again: now it is either being pulled or new

    async def _run(self) -> None:
        progress = self.puller.progress
        found = await self._discover()
        self.pulls = {database_id: _Pull(self, database_id, source) for database_id, source in found.items()}
        progress.to_pull = len(self.pulls)
        self.discovered.set()
        log.info("epoch %d: %d database(s) to pull from %s", self.epoch, len(self.pulls), ", ".join(self.sources) or "nobody")
        await asyncio.gather(*(self._eager(pull) for pull in self.pulls.values()))
        self.puller.settle(self.epoch)
        progress.settled = True
        self.done.set()
        log.info("epoch %d: settled", self.epoch)

    async def _discover(self) -> dict[str, str]:
        answers = await asyncio.gather(*(self._owned_by_me(source) for source in self.sources))
        found: dict[str, str] = {}
        for source, ids in zip(self.sources, answers):
            for database_id in ids:
                found.setdefault(database_id, source)
        return found

    async def _owned_by_me(self, source: str) -> list[str]:
        return await self.retrying(lambda: self.puller.peers.owned(source, self.puller.name, self.epoch),
                                   f"asking {source} for its databases")

    async def _eager(self, pull: _Pull) -> None:
        async with self._limit:
            pull.start()
            await pull.finished

    async def retrying(self, call, what: str):
        """`call()` until it succeeds or says NOT_FOUND (raised); backing off after each failure."""
        pause = BACKOFF[0]
        while True:
            try:
                return await call()
            except grpc.aio.AioRpcError as error:
                if error.code() == grpc.StatusCode.NOT_FOUND:
                    raise
                if error.code() == grpc.StatusCode.FAILED_PRECONDITION:
                    self.puller.membership.reload()  # the peer is at a newer epoch: so may our file be
                log.warning("epoch %d: %s failed (%s: %s); retrying", self.epoch, what, error.code().name,
                            error.details())
            except PeerUnknown as unknown:
                log.warning("epoch %d: %s: no address for %s yet; retrying", self.epoch, what, unknown)
            except (BadCopy, OSError) as bad:  # a damaged copy, or a full disk here: pulled again
                log.warning("epoch %d: %s: %s; retrying", self.epoch, what, bad)
            self.puller.progress.failed += 1
            await asyncio.sleep(pause)
            pause = min(pause * 2, BACKOFF[1])


class _Pull:
    """One database coming here from `source`: copy it unless it is already here, then confirm."""

    def __init__(self, rebalance: Rebalance, database_id: str, source: str):
        self.rebalance = rebalance
        self.database_id = database_id
        self.source = source
        self.arrived = asyncio.Event()  # requests may open it
        self.finished = asyncio.get_running_loop().create_future()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._finish()

    def _finish(self) -> None:
        self.arrived.set()
        if not self.finished.done():
            self.finished.set_result(None)

    async def _run(self) -> None:
        puller, request = self.rebalance.puller, shard_pb2.HandoffRequest(
            database_id=self.database_id, owner=self.rebalance.puller.name, epoch=self.rebalance.epoch)
        try:
            if not puller.storage.path(self.database_id).exists():  # else installed before a restart: confirm only
                await self.rebalance.retrying(lambda: self._copy(request), f"copying {self.database_id} from {self.source}")
                puller.progress.pulled += 1
            self.arrived.set()
            await self.rebalance.retrying(lambda: puller.peers.confirm(self.source, request),
                                          f"confirming {self.database_id} to {self.source}")
        except grpc.aio.AioRpcError:  # NOT_FOUND: the source no longer has it, so it is new here
            log.warning("epoch %d: %s listed %s but has no file for it now", self.rebalance.epoch, self.source,
                        self.database_id)
        puller.progress.to_pull -= 1
        self._finish()

    async def _copy(self, request: shard_pb2.HandoffRequest) -> None:
        storage = self.rebalance.puller.storage
        staging = storage.staging_path(f"{self.database_id}.pull")
        try:
            loop = asyncio.get_running_loop()
            row = None
            with open(staging, "xb") as file:  # written off the event loop, which serves requests meanwhile
                async for chunk in self.rebalance.puller.peers.copy(self.source, request):
                    row = row or (chunk.row if chunk.HasField("row") else None)
                    await loop.run_in_executor(None, file.write, chunk.data)
            await loop.run_in_executor(None, self.rebalance.puller.install, self.database_id, staging, row)
        finally:
            staging.unlink(missing_ok=True)


async def _wait(event: asyncio.Event, remaining: float) -> bool:
    try:
        await asyncio.wait_for(event.wait(), remaining)
    except asyncio.TimeoutError:
        return False
    return True
