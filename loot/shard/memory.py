"""The shard's memory budget (`--memory-mib`): how it is split, checked at start-up and enforced.

What a shard holds, and what bounds it:
- the process itself (interpreter, gRPC, code): PROCESS_BYTES;
- the caches keyed by what clients send (loot/byte_lru.py): CACHE_BYTES, their bounds together;
- results in flight: each worker thread, and the event loop's inline attempt, converts one
  result of at most `--result-bytes` at a time. A row is at most that size as SQLite holds it
  (a statement's values are capped at result bytes / its columns, loot/shard/sandbox.py); as Python
  values it may take up to 4x (text mixing ASCII with characters beyond the BMP), then the reply
  message and its serialized copy: RESULT_COPIES;
- requests held, waiting for their database or running: `--request-bytes` of them as received
  (loot/shard/held_requests.py), each also parsed and its parameters made Python values: REQUEST_COPIES;
- SQLite's heap, everything else: page caches (`--cache-kib` x `--open-databases`), prepared
  statements kept for reuse (at most STATEMENTS_PER_CONNECTION per open database), and the values,
  sorts and temporary tables of running statements. It is capped by sqlite3_hard_heap_limit64 (a statement that would pass it fails, OUT_OF_MEMORY, and frees what
  it took); the soft limit, set to what the caches may keep, makes them give way to running statements.

The heap limit is process-wide: a statement that reaches it may make a concurrent one fail too.
Per-statement caps keep ordinary and hostile statements alike far below it: no value over
`--result-bytes`, no result row over it either.
"""

from __future__ import annotations

from dataclasses import dataclass

import apsw

from loot.shard.limits import MIB, Limits

PROCESS_BYTES = 128 * MIB  # an idle shard holds about 60 MiB: room for the event loop's buffers and gRPC's
CACHE_BYTES = 64 * MIB
RESULT_COPIES = 6
# A request held: its bytes as received, the parsed message, its parameters as Python values.
REQUEST_COPIES = 3
# Statements' own room in the SQLite heap, per worker thread, on top of the page caches: enough for
# rows, sorts and bound values of the sizes the limits allow.
STATEMENT_COPIES = 2
# Prepared statements kept for reuse (apsw's statement cache), per connection: a statement is kept only
# while the connection's prepared statements take less than STATEMENT_CACHE_BYTES, and only if its SQL
# is at most CACHED_SQL_CHARS long (which prepares to at most ~400 KiB: 2,000 columns of `,1` take 1.5 MB).
STATEMENT_CACHE_BYTES = 512 * 1024
CACHED_SQL_CHARS = 1024
STATEMENTS_PER_CONNECTION = 1 * MIB


@dataclass(frozen=True)
class MemoryBudget:
    total: int
    results: int
    requests: int
    page_caches: int
    statements: int  # prepared statements kept for reuse
    sqlite_heap: int  # the hard heap limit: what is left once the rest is set aside


def plan(limits: Limits, threads: int) -> MemoryBudget:
    """Split `--memory-mib`; ValueError, saying what to change, when the other limits do not fit in it."""
    total = limits.memory_mib * MIB
    results = (threads + 1) * limits.result_bytes * RESULT_COPIES
    page_caches = limits.open_databases * limits.cache_kib * 1024
    requests = limits.request_bytes * REQUEST_COPIES
    sqlite_heap = total - PROCESS_BYTES - CACHE_BYTES - results - requests
    statements = limits.open_databases * STATEMENTS_PER_CONNECTION
    needed = page_caches + statements + threads * limits.result_bytes * STATEMENT_COPIES
    if sqlite_heap < needed:
        floor = (PROCESS_BYTES + CACHE_BYTES + results + requests + needed + MIB - 1) // MIB
        raise ValueError(
            f"--memory-mib {limits.memory_mib} is too small for the other limits: it needs at least {floor} "
            f"({PROCESS_BYTES // MIB} MiB for the process, {CACHE_BYTES // MIB} MiB of caches, "
            f"{results // MIB} MiB for results in flight (({threads} worker threads + 1) x {RESULT_COPIES} x "
            f"--result-bytes), {requests // MIB} MiB for requests held ({REQUEST_COPIES} x --request-bytes), "
            f"{page_caches // MIB} MiB of page caches (--open-databases x --cache-kib), "
            f"{statements // MIB} MiB of prepared statements (--open-databases x {STATEMENTS_PER_CONNECTION // MIB} MiB) "
            f"and {threads * limits.result_bytes * STATEMENT_COPIES // MIB} MiB for running statements); "
            "raise it, or lower --result-bytes, --request-bytes, --open-databases or --cache-kib")
    return MemoryBudget(total, results, requests, page_caches, statements, sqlite_heap)


def enforce(budget: MemoryBudget) -> None:
    """Set SQLite's process-wide heap limits from the budget."""
    apsw.hard_heap_limit(budget.sqlite_heap)
    apsw.soft_heap_limit(budget.page_caches + budget.statements)


class KeptStatements:
    """One connection's SQL texts whose prepared statements apsw may keep for reuse: admitted while the
    connection's prepared statements take less than STATEMENT_CACHE_BYTES, then kept without asking
    again (measuring walks every prepared statement: 3 µs, where a warm point select takes 60)."""

    _TEXTS = 64  # forgotten all at once past this: admitting again costs one measurement each

    def __init__(self) -> None:
        self._texts: set[str] = set()

    def may_keep(self, conn: apsw.Connection, sql: str) -> bool:
        if sql in self._texts:
            return True
        if len(sql) > CACHED_SQL_CHARS or conn.status(apsw.SQLITE_DBSTATUS_STMT_USED)[0] >= STATEMENT_CACHE_BYTES:
            return False
        if len(self._texts) >= self._TEXTS:
            self._texts.clear()
        self._texts.add(sql)
        return True


def sqlite_heap_limit() -> int:
    """The hard heap limit in force (0: none)."""
    return apsw.hard_heap_limit(-1)
