"""A throwaway Loot cluster (real router and shard processes) and the tenant the benchmarks use."""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from loot.cli.local_cluster import LocalCluster
from loot.tokens import Key, mint

# One key-value table, opened to the bearer (tables are closed by default: docs/access.md): the
# database itself is the tenant boundary, so the filter and rule are `true`.
KV_SCHEMA = """
CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT NOT NULL);
INSERT INTO _filters (table_name, filter_name, predicate) VALUES ('kv', 'open', 'true');
INSERT INTO _rules (table_name, operation, rule_name, predicate) VALUES ('kv', 'write', 'open', 'true');
"""
TOKEN_TTL = 3600
ROWS = 100
POINT_READ = "SELECT v FROM kv WHERE k = ?"
POINT_WRITE = "UPDATE kv SET v = ? WHERE k = ?"
SEED = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
        "INSERT INTO kv (k, v) SELECT i, 'value ' || i FROM n")


def kv_token(key: Key, tenant: str, name: str = "bench") -> str:
    return mint(key, name, tenant, ttl=TOKEN_TTL, schema=KV_SCHEMA)


@contextlib.contextmanager
def running_cluster(shards: int = 2, membership_file: bool = False,
                    env: dict[str, str] | None = None) -> Iterator[LocalCluster]:
    """A cluster on free loopback ports over a temporary data directory; its output
    is kept quiet and shown only if it fails to start, or the benchmark fails: its
    last lines, and every access-log line of a call that did not end OK."""
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="loot-bench-") as data:
        cluster = LocalCluster(Path(data), port=0, shards=shards, sink=lambda name, line: lines.append(f"{name}: {line}"),
                               membership_file=membership_file, env=env)
        try:
            cluster.start()
            yield cluster
        except Exception:
            failed_calls = [line for line in lines if "loot.access" in line and "code=OK" not in line]
            print("\n".join([*failed_calls[-50:], *lines[-50:]]), file=sys.stderr)
            raise
        finally:
            cluster.stop()
