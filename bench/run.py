"""Every Loot benchmark in one run, each against its baseline measured in the same run.

    python bench/run.py [--quick]

Installs what it needs if absent (h2load from nghttp2-client, wrk, PostgreSQL: the
same as `apt-get update && apt-get install -y nghttp2-client wrk postgresql`),
starts its own Loot cluster and PostgreSQL on free loopback ports, and stops
them. About seven minutes on 2 shared cores; --quick takes about two.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import http_port, profile_hot_path, rls_vs_postgres, router_path, tenants  # noqa: E402
from bench.stats import size  # noqa: E402
from bench.system import ensure_tools  # noqa: E402

TARGET_ROUTER_RATIO = 0.6
TARGET_PROVISIONING_SPEEDUP = 50
# All calls go to one database, so at most 64 in flight: past the shard's per-database queue bound
# (64 waiting) some are refused RESOURCE_EXHAUSTED, as designed, once the queue forms at the shard.
FULL = {"duration": 3.0, "concurrency": [1, 8, 32, 64], "two_routers_concurrency": [8, 32], "http_concurrency": [1, 8, 32],
        "loot_tenants": 10_000, "postgres_tenants": 150}
QUICK = {"duration": 2.0, "concurrency": [1, 32], "two_routers_concurrency": [32], "http_concurrency": [8],
         "loot_tenants": 1_000, "postgres_tenants": 20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter runs and fewer tenants, for a smoke test")
    settings = QUICK if parser.parse_args().quick else FULL
    ensure_tools("h2load", "wrk", "initdb", "pg_ctl")
    summary = []

    section("Router path: Loot (router -> shard -> SQLite) vs a bare grpc.aio server, h2load")
    comparisons = router_path.measure(settings["concurrency"], settings["duration"], rounds=2)
    print(router_path.report(comparisons))
    summary += router_path_summary(comparisons, f"(target >= {TARGET_ROUTER_RATIO}x)")
    print("\nThe same with a second router process on the router's port (not the headline figure):\n")
    two_routers = router_path.measure(settings["two_routers_concurrency"], settings["duration"], rounds=2, routers=2)
    print(router_path.report(two_routers))
    summary += router_path_summary(two_routers, "with 2 router processes")

    section("Point reads through the router's HTTP port (Connect) vs its gRPC port")
    measured = http_port.measure(settings["http_concurrency"], settings["duration"], rounds=2)
    print(http_port.report(measured))
    for side in ("Connect JSON (HTTP/1.1)", "Connect JSON (HTTP/2)", "gRPC, router without HTTP port"):
        ratios = [http_port.ratio(results, side) for _, results in measured]
        summary.append(f"point reads, {side}: {min(ratios):.2f}x to {max(ratios):.2f}x the same router's gRPC port")

    section("Tenant-scoped point operations: Loot vs PostgreSQL row-level security")
    results = rls_vs_postgres.run(tenants=100, concurrency=16, duration=settings["duration"] + 2)
    print(rls_vs_postgres.report(results))
    for operation, (loot, pg) in results.items():
        summary.append(f"{operation} vs PostgreSQL RLS: {rls_vs_postgres.ratio(loot, pg):.2f}x its throughput")

    target = settings["loot_tenants"]
    section(f"Provisioning {target:,} isolated tenants, and the cost of an idle one")
    loot, postgres = tenants.run(target, settings["postgres_tenants"], concurrency=16)
    print(tenants.report(loot, postgres, target))
    summary.append(f"provisioning {target:,} tenants: {postgres.seconds_for(target) / loot.seconds_for(target):.0f}x "
                   f"faster than a PostgreSQL database each (target >= {TARGET_PROVISIONING_SPEEDUP}x; "
                   f"PostgreSQL extrapolated from {postgres.tenants})")
    summary.append(f"idle tenant: {size(loot.disk_per_tenant)} disk, {size(loot.memory_per_tenant)} "
                   f"memory (PostgreSQL: {size(postgres.disk_per_tenant)}, "
                   f"{size(postgres.memory_per_tenant)})")

    section("Hot path profile (py-spy), point reads at concurrency 32")
    for name, collapsed in profile_hot_path.profile(settings["duration"] + 2, 32).items():
        print(f"### {name}\n")
        print(profile_hot_path.report(collapsed, top=15))
    print(profile_hot_path.steps_report())

    section("Summary (ratios measured in this run)")
    print("\n".join(f"- {line}" for line in summary))


def router_path_summary(comparisons: list[router_path.Comparison], note: str) -> list[str]:
    lines = []
    for operation in router_path.OPERATIONS:
        ratios = [c.ratio for c in comparisons if c.operation == operation]
        ceilings = [c.cpu_ceiling for c in comparisons if c.operation == operation]
        lines.append(f"router path, {operation}: {min(ratios):.2f}x to {max(ratios):.2f}x the bare server's "
                     f"throughput {note}; from CPU per call, {min(ceilings):.2f}x to {max(ceilings):.2f}x "
                     f"on dedicated cores")
    return lines


def section(title: str) -> None:
    print(f"\n## {title}\n", flush=True)


if __name__ == "__main__":
    main()
