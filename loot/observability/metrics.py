"""Prometheus metrics, served over HTTP at /metrics on their own port."""

from __future__ import annotations

import heapq
from collections.abc import Callable

from prometheus_client import REGISTRY, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

REQUESTS = Counter("loot_requests", "gRPC calls answered, by full method name and status code", ["method", "code"])
LATENCY = Histogram("loot_request_duration_seconds", "Time to answer a gRPC call, by full method name", ["method"],
                    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
SCHEMA_APPLIES = Counter("loot_schema_applies", "Requests whose schema claim changed their database")
QUOTA_REFUSED = Counter("loot_quota_refused", "Requests a shard refused for their account's database or bytes "
                        "quota, by reason", ["reason"])
RATE_LIMITED = Counter("loot_account_rate_limited", "Calls a router refused for their account's rate limit, by "
                       "account (\"\" when no allowlist bounds the accounts)", ["account"])


def serve_metrics(host: str, port: int) -> str:
    """Start the /metrics endpoint on a background thread; return its bound address."""
    server, _thread = start_http_server(port, addr=host)
    return f"{host}:{server.server_port}"


class DatabaseStatsCollector(Collector):
    """A shard's open databases, connection cache hits and misses, and queued requests, read at scrape time."""

    def __init__(self, stats: Callable[[], dict[str, int]]):
        self._stats = stats

    def collect(self):
        stats = self._stats()
        yield GaugeMetricFamily("loot_open_databases", "Databases with an open connection", value=stats["open"])
        yield CounterMetricFamily("loot_database_cache_hits", "Requests that found their database open", value=stats["hits"])
        yield CounterMetricFamily("loot_database_cache_misses", "Requests that had to open their database", value=stats["misses"])
        yield GaugeMetricFamily("loot_queued_requests", "Requests waiting for their database's turn", value=stats["queued"])


def watch_databases(stats: Callable[[], dict[str, int]]) -> None:
    REGISTRY.register(DatabaseStatsCollector(stats))


class CallsInFlightCollector(Collector):
    """A router's admitted calls not yet answered, read at scrape time: the router counts them in a plain
    integer (one event loop), a Gauge's lock would cost each call about 2 µs."""

    def __init__(self, count: Callable[[], int]):
        self._count = count

    def collect(self):
        yield GaugeMetricFamily("loot_router_calls_in_flight", "Calls a router admitted (token and account "
                                "checked) and has not answered yet", value=self._count())


def watch_calls_in_flight(count: Callable[[], int]) -> None:
    REGISTRY.register(CallsInFlightCollector(count))


# Accounts a shard names in its per-account gauges: the largest by databases and by bytes. A quota is the
# same for every account, so the largest are the ones nearest it; the rest are only counted (loot_accounts).
TOP_ACCOUNTS = 20
Usages = Callable[[], list[tuple[str, int, int]]]  # (account, databases, bytes) of every account on a shard


class AccountUsageCollector(Collector):
    """A shard's databases and bytes per account, read at scrape time, for at most 2 × TOP_ACCOUNTS accounts."""

    def __init__(self, usages: Usages):
        self._usages = usages

    def collect(self):
        usages = self._usages()
        named = {account: (databases, bytes_) for account, databases, bytes_ in
                 heapq.nlargest(TOP_ACCOUNTS, usages, key=lambda usage: usage[1])
                 + heapq.nlargest(TOP_ACCOUNTS, usages, key=lambda usage: usage[2])}
        databases = GaugeMetricFamily("loot_account_databases", f"Databases of an account on this shard (the "
                                      f"{TOP_ACCOUNTS} largest accounts by databases and by bytes)", labels=["account"])
        size = GaugeMetricFamily("loot_account_bytes", "Bytes of an account's databases on this shard (same accounts)",
                                 labels=["account"])
        for account, (count, bytes_) in sorted(named.items()):
            databases.add_metric([account], count)
            size.add_metric([account], bytes_)
        yield databases
        yield size
        yield GaugeMetricFamily("loot_accounts", "Accounts with a database on this shard", value=len(usages))


def watch_account_usage(usages: Usages) -> None:
    REGISTRY.register(AccountUsageCollector(usages))
