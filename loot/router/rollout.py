"""A rollout (docs/fleet.md): apply a schema claim to every database of a name now, canary first.

Each database is converged by the shard's Describe under the claim, the very schema phase its next
request would run (same refusals, nothing else done). Databases already on the claim (their catalog
schema hash is the claim's) are skipped, so running a stopped rollout again resumes it and converges
each database once. A refusal stops it: no database is started after it, and it names the tenant.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc

from loot.ids import database_id
from loot.internal.v1 import shard_pb2
from loot.status import Fault, status_info
from loot.v1 import database_pb2 as pb
from loot.router.envelope import context_field, shard_request
from loot.router.forward_client import InDoubt, NotSent, Refused
from loot.router.shards import Shards

MAX_CONCURRENCY = 64
DEFAULT_CONCURRENCY = 4
_DESCRIBE = pb.DescribeRequest().SerializeToString()
Write = Callable[[pb.RolloutProgress], Awaitable[None]]


@dataclass
class Refusal:
    reason: str
    message: str


_NOT_BEGUN = Refusal("", "")  # stopped by another's refusal before its turn came


def check(request: pb.RolloutRequest) -> int:
    """The request's concurrency per shard, once the request is well formed."""
    if not request.name or not request.schema.strip():
        raise Fault(grpc.StatusCode.INVALID_ARGUMENT, "BAD_ROLLOUT", "a rollout needs a database `name` and the "
                    "`schema` claim to apply")
    if request.canary < 0 or not 0 <= request.concurrency <= MAX_CONCURRENCY:
        raise Fault(grpc.StatusCode.INVALID_ARGUMENT, "BAD_ROLLOUT", f"`canary` must be 0 or more and `concurrency` "
                    f"0 (for {DEFAULT_CONCURRENCY}) to {MAX_CONCURRENCY}", limit=MAX_CONCURRENCY)
    return request.concurrency or DEFAULT_CONCURRENCY


def claim_hash(claim: str) -> str:
    """The schema hash a database on `claim` has in its history and the catalog (docs/schema.md)."""
    return hashlib.sha256(claim.encode()).hexdigest()


class Rollout:
    def __init__(self, shards: Shards, account: str, request: pb.RolloutRequest, timeout: float, write: Write):
        self.shards = shards
        self.account = account
        self.request = request
        self.concurrency = check(request)
        self.timeout = timeout
        self.write = write
        self._gates: dict[str, asyncio.Semaphore] = {}

    async def run(self, databases: list[pb.DatabaseInfo]) -> None:
        """Converge `databases` (every one of the name), writing progress after each; canary first."""
        wanted = claim_hash(self.request.schema)
        targets = [info for info in databases if info.schema_hash != wanted]
        progress = pb.RolloutProgress(phase="canary", total=len(databases), already=len(databases) - len(targets))
        canary = self.request.canary
        for phase, batch in (("canary", targets[:canary]), ("rest", targets[canary:])):
            progress.phase, progress.tenant = phase, ""
            await self.write(progress)
            if not await self._phase(batch, progress):
                return
        progress.phase, progress.tenant = "done", ""
        await self.write(progress)

    async def _phase(self, batch: list[pb.DatabaseInfo], progress: pb.RolloutProgress) -> bool:
        """Converge `batch`, at most `concurrency` at a time per shard; False once one was refused."""
        finished: asyncio.Queue[tuple[pb.DatabaseInfo, Refusal | None]] = asyncio.Queue()
        stopped = asyncio.Event()

        async def one(info: pb.DatabaseInfo) -> None:
            refusal = None
            try:
                refusal = await self._converge(info, stopped)
            finally:
                finished.put_nowait((info, refusal))

        async with asyncio.TaskGroup() as tasks:
            for info in batch:
                tasks.create_task(one(info))
            for _ in batch:
                info, refusal = await finished.get()
                if stopped.is_set() or refusal is _NOT_BEGUN:
                    continue  # in flight when another was refused: finished, not counted as a new step
                if refusal is not None:
                    stopped.set()
                    progress.phase, progress.tenant = "refused", info.tenant
                    progress.refusal_reason, progress.refusal_message = refusal.reason, refusal.message
                    await self.write(progress)
                    continue
                progress.converged += 1
                progress.tenant = info.tenant
                await self.write(progress)
        return not stopped.is_set()

    async def _converge(self, info: pb.DatabaseInfo, stopped: asyncio.Event) -> Refusal | None:
        db = database_id(self.account, info.name, info.tenant)
        owner = self.shards.source.current.ring.owner(db)
        gate = self._gates.setdefault(owner, asyncio.Semaphore(self.concurrency))
        async with gate:
            if stopped.is_set():
                return _NOT_BEGUN
            context = shard_pb2.Context(database_id=db, account=self.account, name=info.name, tenant=info.tenant,
                                        schema=self.request.schema, claims_json="{}")
            message = shard_request(context_field(context.SerializeToString()), _DESCRIBE)
            return await call_owner(self.shards, db, shard_pb2.FORWARDED_METHOD_DESCRIBE, message, self.timeout,
                                    "run the rollout again to resume")



async def call_owner(shards: Shards, db: str, method: int, message: bytes, timeout: float,
                     lost_advice: str) -> Refusal | None:
    """Send `message` to `db`'s owner on its Forward streams; the refusal, if any. A WRONG_SHARD under a
    newer membership is sent once more, to the new owner, as the router does for a client's call."""
    for first_attempt in (True, False):
        name, shard, routed_under = shards.for_database(db)
        try:
            await shard.call(method, message, timeout, routed_under, "")
            return None
        except Refused as refused:
            info = status_info(refused.status)
            if first_attempt and info is not None and info.reason == "WRONG_SHARD":
                shards.source.reload()  # the database moved: once more at its new owner
                continue
            return Refusal(info.reason if info is not None else "REFUSED", refused.status.message)
        except (TimeoutError, InDoubt, NotSent) as lost:
            return Refusal("SHARD_UNAVAILABLE", f"shard {name} did not answer ({lost or 'deadline'}); {lost_advice}")
    return None
