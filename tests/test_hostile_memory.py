"""Hostile statements against a shard whose memory is capped: each is refused with a clear reason (or
runs within bounds), the shard lives on, serves another tenant, and stays within its memory budget."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from tests.client import Client, rows
from loot.cli.local_cluster import LocalCluster
from loot.status import error_info
from loot.tokens import Key, mint
from tests.capped_memory import cap_memory, status_kib
from tests.conftest import refused, start_cluster
from tests.schemas import open_table

pytestmark = pytest.mark.cluster  # its capped shard is started by its own fixture

MIB = 1024 * 1024
BUDGET_MIB = 640
RESULT_BYTES = 4 * MIB
REQUEST_BYTES = 32 * MIB
NOTES = open_table("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)", "notes")
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED



@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """One shard told its budget (--memory-mib) and held to it: its address space may grow by no more than
    the budget past what it reserved at start (threads' stacks and malloc arenas are reserved, not used)."""
    # The value-operations budget (test_hostile_time.py) would refuse many of these statements first:
    # lifted here, so that the memory bounds alone are what holds.
    env = {"LOOT_MEMORY_MIB": str(BUDGET_MIB), "LOOT_RESULT_BYTES": str(RESULT_BYTES),
           "LOOT_REQUEST_BYTES": str(REQUEST_BYTES), "LOOT_OPEN_DATABASES": "16", "LOOT_VALUE_OPERATIONS": "100000"}
    cluster = start_cluster(tmp_path_factory.mktemp("capped"), shards=1, env=env)
    cap_memory(cluster.shards["shard-0"].process.pid, BUDGET_MIB)
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def client(capped: LocalCluster) -> Iterator[Client]:
    with Client(capped.address) as client:
        yield client


@pytest.fixture
def neighbour(capped: LocalCluster, client: Client, key: Key) -> Iterator[str]:
    """Another tenant's database on the same shard: after each attack the shard is alive, serves it, and
    has never held more than its budget."""
    token = mint(key, "app", "neighbour", schema=NOTES)
    client.execute(token, "INSERT OR REPLACE INTO notes VALUES (1, 'still here')")
    yield token
    shard = capped.shards["shard-0"]
    assert shard.alive()
    assert rows(client.execute(token, "SELECT body FROM notes WHERE id = 1").result) == [("still here",)]
    assert status_kib(shard.process.pid, "VmHWM") < BUDGET_MIB * 1024


def blobs(columns: int, size: int) -> str:
    return "SELECT " + ", ".join([f"randomblob({size})"] * columns)


def each_of(count: int, expression: str) -> str:
    """`expression` over `count` rows of a recursive CTE (n = 1..count)."""
    return f"WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < {count}) {expression}"


# Each value within the value limit, but together far past the result limit: SQLite makes the whole row
# before handing it over. Refused before it is made.
TOO_BIG = {
    "wide row": blobs(100, 4_000_000),
    "one huge value": blobs(1, 16_000_000),
    "printf width": "SELECT printf('%.*c', 2000000000, 'x')",
    "zeroblob": "SELECT zeroblob(1000000000)",
    "replace": "SELECT length(replace(printf('%.*c', 1000000, 'a'), 'a', 'bbbbbbbbbb'))",
    "group_concat": each_of(100, "SELECT length(group_concat(randomblob(1000000))) FROM c"),
    "window": each_of(100, "SELECT length(group_concat(randomblob(1000000)) OVER ()) FROM c LIMIT 1"),
    "hex doubling": "SELECT length(hex(randomblob(3000000)))",
    "concatenation": "SELECT length(randomblob(3000000) || randomblob(3000000))",
    "returned by a write": "INSERT INTO notes (body) VALUES ('x') RETURNING " + ", ".join(["randomblob(4000000)"] * 50),
}


@pytest.mark.parametrize("sql", TOO_BIG.values(), ids=TOO_BIG.keys())
def test_oversized_values_and_rows_are_refused_before_they_are_made(client: Client, key: Key, neighbour: str,
                                                                    sql: str) -> None:
    info = refused(lambda: client.execute(mint(key, "app", "attacker", schema=NOTES), sql, timeout=60), EXHAUSTED,
                   "TOO_BIG")
    assert int(info.metadata["limit"]) <= RESULT_BYTES


def test_a_row_whose_values_share_the_result_limit_is_named_so(client: Client, key: Key, neighbour: str) -> None:
    with pytest.raises(grpc.RpcError) as failed:
        client.execute(mint(key, "app", "attacker", schema=NOTES), blobs(10, 1_000_000))
    assert failed.value.code() == EXHAUSTED
    assert "result columns share" in failed.value.details()


def test_what_grows_past_the_heap_limit_fails_alone(client: Client, key: Key, neighbour: str) -> None:
    # json_group_array checks its length only once done: up to then it holds what the SQLite heap allows.
    sql = each_of(300, "SELECT length(json_group_array(hex(randomblob(500000)))) FROM c")
    info = refused(lambda: client.execute(mint(key, "app", "attacker", schema=NOTES), sql, timeout=60), EXHAUSTED,
                   "OUT_OF_MEMORY")
    assert 0 < int(info.metadata["limit"]) < BUDGET_MIB * MIB


# Bounded by the SQLite heap limit or by spilling to temporary files: each ends within the budget.
WITHIN_BOUNDS = {
    "many big intermediate values": "SELECT " + " + ".join(["length(randomblob(4000000))"] * 60),
    "sorting big values": each_of(60, "SELECT length(b) FROM (SELECT randomblob(3000000) AS b FROM c) ORDER BY b "
                                      "LIMIT 1"),
    "distinct big values": each_of(60, "SELECT count(DISTINCT b) FROM (SELECT randomblob(3000000) AS b FROM c)"),
    "recursive union keeping every row": ("WITH RECURSIVE c(n, b) AS (SELECT 1, randomblob(3000000) UNION "
                                          "SELECT n + 1, randomblob(3000000) FROM c WHERE n < 60) "
                                          "SELECT count(*) FROM c"),
}


@pytest.mark.parametrize("sql", WITHIN_BOUNDS.values(), ids=WITHIN_BOUNDS.keys())
def test_big_intermediate_work_stays_within_the_budget(client: Client, key: Key, neighbour: str, sql: str) -> None:
    token = mint(key, "app", "attacker", schema=NOTES)
    try:
        client.execute(token, sql, timeout=60)
    except grpc.RpcError as error:  # each spills to temporary files and succeeds, unless it meets its time limit
        assert error.code() in (EXHAUSTED, grpc.StatusCode.DEADLINE_EXCEEDED), error.details()


def big_parameters(count: int) -> tuple[str, list[bytes]]:
    return "SELECT " + " + ".join(["length(?)"] * count), [b"x" * 4_000_000] * count


def test_many_big_bound_parameters(client: Client, key: Key, neighbour: str) -> None:
    token = mint(key, "app", "attacker", schema=NOTES)
    [[total]] = rows(client.execute(token, *big_parameters(7), timeout=60).result)
    assert total == 7 * 4_000_000
    info = refused(lambda: client.execute(token, *big_parameters(14), timeout=60), EXHAUSTED, "REQUEST_TOO_LARGE")
    assert info.metadata["limit"] == str(REQUEST_BYTES)
    refused(lambda: client.execute(token, "SELECT length(?)", [b"x" * (RESULT_BYTES + 1)], timeout=60), EXHAUSTED,
            "TOO_BIG")


def test_big_requests_waiting_for_one_database_are_held_within_the_budget(client: Client, key: Key,
                                                                          neighbour: str) -> None:
    """Twelve 20 MB requests queued behind a statement that runs to its time limit: the shard holds at most
    --request-bytes of them (each also parsed, then made Python values); the others are refused, to be retried."""
    token = mint(key, "app", "queued", schema=NOTES)
    endless = "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c) SELECT count(*) FROM c"

    def send(sql: str, params: list[bytes]) -> str:
        try:
            client.execute(token, sql, params, timeout=60)
            return "OK"
        except grpc.RpcError as error:
            info = error_info(error)
            return info.reason if info is not None else error.code().name

    with ThreadPoolExecutor(13) as pool:
        running = pool.submit(send, endless, [])
        waiting = [pool.submit(send, *big_parameters(5)) for _ in range(12)]
        outcomes = [future.result() for future in waiting]
    assert running.result() == "INTERRUPTED"
    assert set(outcomes) <= {"OK", "TOO_MANY_REQUESTS"} and "TOO_MANY_REQUESTS" in outcomes, outcomes


OWNED = """CREATE TABLE notes (id INTEGER PRIMARY KEY, owner TEXT, body TEXT);
INSERT INTO _filters VALUES ('notes', 'own', 'owner = claim(''user'')');
INSERT INTO _rules VALUES ('notes', 'write', 'own', 'owner = claim(''user'')');"""


def test_caches_keyed_by_sql_text_stay_bounded(capped: LocalCluster, client: Client, key: Key,
                                               neighbour: str) -> None:
    """Distinct UPDATEs of almost 1 MiB each on a filtered table (rewritten to filter rows first, and the
    rewrite cached): the shard keeps a bounded number of bytes of them, not a bounded number of them."""
    token = mint(key, "app", "owned", schema=OWNED, user="mallory")
    client.execute(token, "INSERT OR REPLACE INTO notes VALUES (1, 'mallory', '')")
    pid = capped.shards["shard-0"].process.pid
    before = status_kib(pid, "VmRSS")
    for n in range(64):
        update = f"UPDATE notes SET body = '{n}' WHERE id = 1 AND length(x'{'ab' * 500_000}') > 0"
        assert client.execute(token, update, timeout=60).result.rows_written == 1
    assert status_kib(pid, "VmRSS") - before < 96 * 1024


@pytest.mark.parametrize("pragma", ["PRAGMA hard_heap_limit = 1000000", "PRAGMA soft_heap_limit = 0",
                                    "PRAGMA temp_store = MEMORY", "PRAGMA cache_size = -10000000", "PRAGMA threads = 8"])
def test_privileged_sql_cannot_change_how_the_shard_holds_memory(client: Client, key: Key, neighbour: str,
                                                                  pragma: str) -> None:
    """The heap limits are the whole process's: one application's `before` must not lower or lift them for all."""
    token = mint(key, "app", "attacker", schema=NOTES, before=pragma)
    refused(lambda: client.execute(token, "SELECT 1"), grpc.StatusCode.PERMISSION_DENIED, "PRAGMA")


def test_prepared_statements_kept_for_reuse_stay_bounded(client: Client, key: Key, neighbour: str) -> None:
    """SQLite's statement cache holds each prepared statement whole: 4 KB of SQL returning 2,000 columns
    prepares to 1.5 MB. Kept per open database, they filled SQLite's heap for every tenant."""
    for tenant in range(8):
        token = mint(key, "app", f"hoarder-{tenant}", schema=NOTES)
        for n in range(20):
            client.execute(token, f"SELECT {n}" + ", 1" * 1999, timeout=60)
    assert rows(client.execute(neighbour, "SELECT count(*) FROM notes").result) == [(1,)]
