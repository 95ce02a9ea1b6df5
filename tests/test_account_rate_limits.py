"""Requests per second per account (docs/operations.md, "Quotas"): the token bucket, then through a router."""

from __future__ import annotations

import subprocess
from pathlib import Path

import grpc
import pytest

from loot.router.rate_limits import RateLimits
from loot.status import Fault
from loot.tokens import Key, mint
from tests.client import Client, rows
from tests.conftest import refused, start_cluster
from tests.test_accounts_allowlist import clean_env, router, router_metric


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def refusal(limits: RateLimits, account: str) -> Fault:
    with pytest.raises(Fault) as refused_call:
        limits.take(account)
    assert refused_call.value.reason == "ACCOUNT_RATE_LIMITED"
    return refused_call.value


def test_a_burst_is_allowed_then_calls_are_paced_at_the_rate() -> None:
    clock = Clock()
    limits = RateLimits(rate=10, burst=3, label_accounts=False, clock=clock)
    for _ in range(3):
        limits.take("a")
    assert refusal(limits, "a").metadata["retry_after_ms"] == "100"
    limits.take("b")  # every account has its own bucket
    clock.now += 0.1
    limits.take("a")
    refusal(limits, "a")
    clock.now += 3600  # an idle hour refills the bucket to its burst, no more
    for _ in range(3):
        limits.take("a")
    refusal(limits, "a")


def test_refused_calls_do_not_drain_the_bucket_further() -> None:
    clock = Clock()
    limits = RateLimits(rate=1, burst=1, label_accounts=False, clock=clock)
    limits.take("a")
    for _ in range(5):
        refusal(limits, "a")
    clock.now += 1
    limits.take("a")


def test_the_buckets_kept_are_bounded() -> None:
    clock = Clock()
    limits = RateLimits(rate=1, burst=1, label_accounts=False, max_accounts=2, clock=clock)
    for account in ("a", "b", "c"):
        limits.take(account)
    assert len(limits._buckets) == 2 and "a" not in limits._buckets


@pytest.mark.cluster
def test_a_router_refuses_an_account_over_its_rate_and_not_the_others(tmp_path: Path) -> None:
    busy, quiet = Key.generate(), Key.generate()
    cluster = start_cluster(tmp_path / "cluster", shards=1, env={
        "LOOT_ACCOUNT_RATE": "0.001", "LOOT_ACCOUNT_BURST": "5",  # no refill within the test
        "LOOT_ACCOUNTS": f"{busy.account},{quiet.account}", "LOOT_METRICS_PORT": "0"})
    try:
        with Client(cluster.address) as client:
            token = mint(busy, "app", "t")
            for _ in range(5):
                assert rows(client.execute(token, "SELECT 1").result) == [(1,)]
            info = refused(lambda: client.execute(token, "SELECT 1"), grpc.StatusCode.RESOURCE_EXHAUSTED,
                           "ACCOUNT_RATE_LIMITED")
            assert int(info.metadata["retry_after_ms"]) > 0
            assert rows(client.execute(mint(quiet, "app", "t"), "SELECT 1").result) == [(1,)]
        assert router_metric(cluster, f'loot_account_rate_limited_total{{account="{busy.account}"}}') == 1
    finally:
        cluster.stop()


@pytest.mark.cluster
@pytest.mark.parametrize("flags", [["--account-rate", "-1"], ["--account-rate", "5", "--account-burst", "0.5"]])
def test_bad_rate_settings_stop_the_router(flags: list[str]) -> None:
    done = subprocess.run(router(*flags), env=clean_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "--account-rate" in done.stderr
