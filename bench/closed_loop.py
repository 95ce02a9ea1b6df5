"""A closed-loop asyncio load: `concurrency` workers each await one call after another."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable

from bench.stats import Load, percentile

Call = Callable[[int], Awaitable[None]]  # receives a running call number


async def closed_loop(call: Call, *, concurrency: int, duration: float, warm_up: float) -> Load:
    """Run for warm_up + duration seconds; only calls that start after the warm-up count."""
    numbers = itertools.count()
    start = time.perf_counter()
    measure_from, stop_at = start + warm_up, start + warm_up + duration
    latencies: list[float] = []

    async def worker() -> None:
        while (began := time.perf_counter()) < stop_at:
            await call(next(numbers))
            if began >= measure_from:
                latencies.append(time.perf_counter() - began)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    latencies.sort()
    elapsed = time.perf_counter() - measure_from
    return Load(concurrency, len(latencies), len(latencies) / elapsed,
                percentile(latencies, 0.50), percentile(latencies, 0.99))
