"""Requests per second per account, a token bucket on each router (docs/operations.md, "Quotas").

Each account's bucket holds up to `burst` calls and refills at `rate` a second; a call takes one or
is refused with RESOURCE_EXHAUSTED ACCOUNT_RATE_LIMITED (metadata `retry_after_ms`). Buckets are per
router: behind R routers an account gets up to R × rate. Idle buckets are forgotten once
`max_accounts` are kept (least recently used first); a forgotten bucket comes back full, which an idle
one soon is anyway.
"""

from __future__ import annotations

import argparse
import math
import time
from collections import OrderedDict
from collections.abc import Callable

import grpc

from loot.observability.metrics import RATE_LIMITED
from loot.settings import add_flag
from loot.status import Fault


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_flag(parser, "--account-rate", default=0.0, type=float,
             help="calls per second each account may make through this router (0 = unlimited)")
    add_flag(parser, "--account-burst", type=float,
             help="calls an account may make at once before --account-rate paces it (default: one second's worth)")


class RateLimits:
    def __init__(self, rate: float, burst: float, *, label_accounts: bool, max_accounts: int = 65536,
                 clock: Callable[[], float] = time.monotonic):
        self.rate, self.burst = rate, burst
        self.label_accounts = label_accounts  # only when an allowlist bounds the accounts (metric cardinality)
        self.max_accounts = max_accounts
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # account -> (tokens, at)

    def take(self, account: str) -> None:
        """One call for `account`, or RESOURCE_EXHAUSTED when its bucket is empty."""
        now = self._clock()
        tokens, at = self._buckets.pop(account, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        self._buckets[account] = (tokens - 1 if tokens >= 1 else tokens, now)
        if len(self._buckets) > self.max_accounts:
            self._buckets.popitem(last=False)
        if tokens < 1:
            RATE_LIMITED.labels(account if self.label_accounts else "").inc()
            wait_ms = math.ceil((1 - tokens) / self.rate * 1000)
            raise Fault(grpc.StatusCode.RESOURCE_EXHAUSTED, "ACCOUNT_RATE_LIMITED",
                        f"account {account} is over {self.rate:g} calls a second on this router (bursts of "
                        f"{self.burst:g}): retry in {wait_ms} ms", retry_after_ms=wait_ms, limit=f"{self.rate:g}")


def from_arguments(args: argparse.Namespace, role: str, label_accounts: bool) -> RateLimits | None:
    """The limits the settings ask for; None when calls are not limited."""
    if args.account_rate < 0 or (args.account_burst is not None and args.account_burst < 1):
        raise SystemExit(f"loot {role}: --account-rate must be 0 (unlimited) or more, --account-burst 1 or more")
    if args.account_rate == 0:
        return None
    burst = args.account_burst if args.account_burst is not None else max(1.0, args.account_rate)
    return RateLimits(args.account_rate, burst, label_accounts=label_accounts)
