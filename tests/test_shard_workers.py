"""How the shard's workers are shared between accounts (loot/shard/workers.py)."""

from __future__ import annotations

import asyncio

from loot.shard.workers import Workers


async def _queue(workers: Workers, account: str, taken: list[str]) -> None:
    await workers.turn(account)
    taken.append(account)


def test_an_account_holds_at_most_its_share_and_the_rest_stay_free_for_others() -> None:
    async def scenario() -> list[str]:
        workers, taken = Workers(4, 2), []
        waiting = [asyncio.create_task(_queue(workers, "greedy", taken)) for _ in range(5)]
        await asyncio.sleep(0)
        await asyncio.wait_for(_queue(workers, "calm", taken), 5)  # a worker is free for another account at once
        for task in waiting:
            task.cancel()
        return taken

    assert asyncio.run(scenario()) == ["greedy", "greedy", "calm"]


def test_freed_workers_go_to_waiting_accounts_in_turn_not_to_the_oldest_work() -> None:
    async def scenario() -> list[str]:
        workers, taken = Workers(1, 1), []
        await workers.turn("busy")  # the only worker
        queued = [asyncio.create_task(_queue(workers, account, taken)) for account in ("a", "a", "a", "b", "c")]
        await asyncio.sleep(0)
        for _ in queued:
            workers.release(taken[-1] if taken else "busy")
            await asyncio.sleep(0)
        return taken

    assert asyncio.run(scenario()) == ["a", "b", "c", "a", "a"]


def test_a_caller_that_gives_up_waiting_takes_no_worker() -> None:
    async def scenario() -> list[str]:
        workers, taken = Workers(1, 1), []
        await workers.turn("busy")
        gone = asyncio.create_task(_queue(workers, "gone", taken))
        await asyncio.sleep(0)
        gone.cancel()
        later = asyncio.create_task(_queue(workers, "later", taken))
        await asyncio.sleep(0)
        workers.release("busy")
        await asyncio.wait_for(later, 5)
        return taken

    assert asyncio.run(scenario()) == ["later"]
