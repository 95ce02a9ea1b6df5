"""The worker threads that run SQLite, shared fairly between accounts.

An account (the application whose key signs the tokens, loot/ids.py) runs at most `per_account` works at
once, so one account's slow requests never take every worker: while fewer than threads / per_account
accounts are busy, another account's request finds a worker free. When none is free, a worker that frees
up goes to the next account in turn with work waiting (round robin over accounts, oldest work first
within one), not to the oldest work on the shard: one account's queue cannot stand in front of another's.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor


class Workers:
    def __init__(self, threads: int, per_account: int):
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="sqlite")
        self._free = threads
        self._per_account = per_account
        self._running: dict[str, int] = {}
        self._waiting: OrderedDict[str, deque[asyncio.Future[None]]] = OrderedDict()  # accounts in turn order

    async def turn(self, account: str) -> None:
        """Return once a worker is the account's; the caller gives it back with `release(account)`."""
        if self._free and self._running.get(account, 0) < self._per_account:
            self._take(account)
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(account, deque()).append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # given a worker just as the caller gave up: pass it on
                self.release(account)
            raise

    def release(self, account: str) -> None:
        self._free += 1
        self._running[account] -= 1
        if not self._running[account]:
            del self._running[account]
        self._dispatch()

    def _take(self, account: str) -> None:
        self._free -= 1
        self._running[account] = self._running.get(account, 0) + 1

    def _dispatch(self) -> None:
        """Give free workers to waiting accounts under their share, in turn."""
        while self._free:
            account = next((name for name in self._waiting if self._running.get(name, 0) < self._per_account), None)
            if account is None:
                return
            waiters = self._waiting.pop(account)
            while waiters and waiters[0].done():  # its caller gave up
                waiters.popleft()
            if not waiters:
                continue
            self._take(account)
            waiters.popleft().set_result(None)
            if waiters:
                self._waiting[account] = waiters  # to the back of the turn
