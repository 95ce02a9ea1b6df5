"""The shard's limits and durability setting (docs/shard.md#the-sandbox): defaults, flags, env."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields

from loot.settings import add_flag

MIB = 1024 * 1024
# Room under gRPC's 64 MiB message for the response's other parts (columns, schema changes).
MAX_RESULT_BYTES = 48 * MIB


@dataclass(frozen=True)
class Limits:
    statement_seconds: float = 5.0
    # An interactive transaction (docs/transactions.md): longest wait for its next message, longest life.
    transaction_idle_seconds: float = 5.0
    transaction_seconds: float = 30.0
    result_bytes: int = 16 * MIB
    database_bytes: int = 1024 * MIB
    sql_bytes: int = 1 * MIB
    batch_statements: int = 1000
    parameters: int = 32766
    # Whole-value operations (functions, ||) in one statement's program (loot/shard/value_work.py).
    value_operations: int = 32
    # Requests waiting for (or running on) one database, and on the whole shard.
    queued_per_database: int = 64
    queued: int = 4096
    # Worker threads running SQLite, and how many of them one account may hold at once (loot/shard/workers.py).
    workers: int = 8
    account_workers: int = 4
    open_databases: int = 256
    # Per-connection page cache; with `open_databases` it bounds the shard's SQLite memory.
    cache_kib: int = 512
    # Bytes of forwarded requests held at once, waiting or running (each may be 64 MiB).
    request_bytes: int = 64 * MIB
    # The shard's whole memory: the SQLite heap limit is what is left of it (loot/shard/memory.py).
    memory_mib: int = 2048
    # "full": WAL + synchronous=FULL, acknowledged writes survive power loss.
    # "normal": WAL + synchronous=NORMAL, they survive a process crash; power loss may lose the last ones.
    durability: str = "full"
    # Per account, across the cluster, each shard enforcing its share (loot/shard/quotas.py); 0: unlimited.
    account_databases: int = 0
    account_bytes: int = 0


_HELP = {
    "statement_seconds": "longest run time of one statement, in seconds (DEADLINE_EXCEEDED)",
    "transaction_idle_seconds": "longest wait for a transaction's next message, in seconds (ABORTED, rolled back)",
    "transaction_seconds": "longest life of a transaction, in seconds (ABORTED, rolled back)",
    "result_bytes": "largest result of one request, in bytes (RESOURCE_EXHAUSTED)",
    "database_bytes": "largest database file, in bytes (RESOURCE_EXHAUSTED, rolled back)",
    "sql_bytes": "longest SQL text of one statement, in bytes (INVALID_ARGUMENT)",
    "batch_statements": "most statements in one Batch (INVALID_ARGUMENT)",
    "parameters": "most parameters in one statement (INVALID_ARGUMENT)",
    "value_operations": "most whole-value operations (printf, hex, ||, ...) in one statement (RESOURCE_EXHAUSTED)",
    "queued_per_database": "most requests waiting on one database (RESOURCE_EXHAUSTED)",
    "queued": "most requests waiting on the whole shard (RESOURCE_EXHAUSTED)",
    "workers": "threads running SQLite work",
    "account_workers": "most workers one account holds at once; the rest stay free for other accounts",
    "open_databases": "databases kept open; the least recently used idle ones are closed",
    "cache_kib": "SQLite page cache per open database, in KiB",
    "request_bytes": "bytes of requests the shard holds at once, waiting or running (RESOURCE_EXHAUSTED)",
    "memory_mib": "the shard's memory budget, in MiB; SQLite's heap is capped at what the other limits leave "
                  "of it (OUT_OF_MEMORY past it; checked at start-up, docs/operations.md)",
    "durability": "full (survives power loss) or normal (survives a crash of the process)",
    "account_databases": "most databases one account may have across the cluster, 0 for no limit; each shard "
                         "enforces its share (RESOURCE_EXHAUSTED ACCOUNT_DATABASE_QUOTA; docs/operations.md#quotas)",
    "account_bytes": "most bytes one account's databases may take across the cluster, 0 for no limit; each shard "
                     "enforces its share (RESOURCE_EXHAUSTED ACCOUNT_BYTES_QUOTA; docs/operations.md#quotas)",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for field in fields(Limits):
        flag = "--" + field.name.replace("_", "-")
        kind = {"float": float, "int": int}.get(field.type, str)
        add_flag(parser, flag, default=field.default, type=kind, help=_HELP[field.name])


def from_arguments(args: argparse.Namespace) -> Limits:
    limits = Limits(**{field.name: getattr(args, field.name) for field in fields(Limits)})
    if limits.durability not in ("full", "normal"):
        raise SystemExit(f"--durability must be full or normal, not {limits.durability!r}")
    if limits.workers < 1 or limits.account_workers < 1:
        raise SystemExit("--workers and --account-workers must be at least 1")
    if limits.account_databases < 0 or limits.account_bytes < 0:
        raise SystemExit("--account-databases and --account-bytes must be 0 (no limit) or more")
    if limits.value_operations < 1:
        raise SystemExit("--value-operations must be at least 1")
    if limits.result_bytes > MAX_RESULT_BYTES:
        raise SystemExit(f"--result-bytes may be at most {MAX_RESULT_BYTES} (a response must fit in one gRPC message)")
    return limits
