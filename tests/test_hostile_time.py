"""Hostile statements against time (docs/shard.md, "Time and fairness"): every statement stops at its
limit whatever one SQLite step does, one account's slow work leaves workers to the others, a call its
client gave up on keeps its database until its work ends, and DEADLINE_EXCEEDED means nothing applied.

The cluster has one shard (every database on it) and a 1 s statement limit; the calls' own deadlines are
generous, so an answer that is the shard's (it carries Loot's ErrorInfo) shows what the shard did."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from tests.client import Client, rows
from loot.cli.local_cluster import LocalCluster
from loot.status import error_info
from loot.tokens import Key, mint
from tests.capped_memory import cap_memory, status_kib
from tests.conftest import start_cluster
from tests.schemas import open_table

pytestmark = pytest.mark.cluster  # its clusters are started by its own fixtures

NOTES = open_table("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)", "notes")
GENEROUS = 60.0  # seconds: far past the 1 s statement limit, so only the shard's limits decide


def _text(chars: int, then: str = "") -> str:
    return f"(printf('%.*c', {chars}, 'a') || '{then}')"


def _rows_forever(condition: str) -> str:
    return f"WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c) SELECT count(*) FROM c WHERE {condition}"


# One VM step of SQLite's own instr/replace/LIKE/GLOB on these took minutes to hours, out of reach of the clock.
HOSTILE = {
    "instr": (f"SELECT instr({_text(8_000_000)}, {_text(4_000_000, 'b')})", "OK"),
    "replace": (f"SELECT length(replace({_text(8_000_000)}, {_text(4_000_000, 'b')}, 'x'))", "OK"),
    "like, a long literal piece": (f"SELECT {_text(8_000_000)} LIKE '%' || {_text(40_000, 'b')} || '%'", "OK"),
    "like, a piece with _": (f"SELECT {_text(8_000_000)} LIKE '%' || {_text(40_000, '_b')} || '%'",
                             "TOO_EXPENSIVE"),
    "glob, a piece with ?": (f"SELECT {_text(8_000_000)} GLOB '*' || {_text(40_000, '?b')} || '*'", "TOO_EXPENSIVE"),
    "instr on every row": (_rows_forever(f"instr({_text(2_000_000)} || n, 'ab') = 0"), "INTERRUPTED"),
    "group by 1 MiB keys": (f"SELECT count(*) FROM (SELECT {_text(1_000_000)} || n AS k FROM "
                            f"(WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c) SELECT n FROM c) "
                            "GROUP BY k)", "INTERRUPTED"),
}
# One step nearly as long as the value-operations budget allows (32 at the default; a length and an addition
# count 1/4 each): a row of 21 random values of 16 MB (a second or more, no interrupt check in it).
LONG_STEP = " + ".join(["length(randomblob(16000000))"] * 21)


def _sum(term: str, times: int, source: str = "") -> str:
    return f"SELECT {' + '.join([term] * times)} {source}"


# One row of many operations on big values, each one step with no interrupt check between them: 300 columns
# of them took 15 s against a 1 s limit, and the SQL limit allows minutes.
BIG_VALUE = "FROM (SELECT printf('%.*c', 8000000, 'a') AS v)"
FLATTENED = "FROM (SELECT printf('%.*c', 16000000, column1) AS v FROM (VALUES ('a')))"  # v: a printf per use
BUDGET_MIB = 2048  # the shard's default memory budget
LONG_ROWS = {
    "randomblob": _sum("length(randomblob(16000000))", 300),
    "hex": _sum("length(hex(v))", 300, BIG_VALUE),
    "||": f"SELECT {', '.join(['length(v || v)'] * 1500)} {BIG_VALUE}",
    "a subquery's printf copied to each use": _sum("length(v)", 300, FLATTENED),
    "numbers read from 16 MB of digits": _sum("(v + 0)", 300,  # LIMIT: v computed once, copied to each use
                                              "FROM (SELECT printf('%.*c', 16000000, '1') AS v LIMIT 1)"),
    "comparisons": "SELECT " + " AND ".join(["v < w"] * 900) + (  # each compares 8 MB: counts 1/4
        " FROM (SELECT printf('%.*c', 8000000, 'a') AS v, printf('%.*c', 8000000, 'a') || 'b' AS w)"),
    # Its program shows the literal's bytes, which are not text: the count must not give up on it.
    "beside a blob literal that is not UTF-8": "SELECT x'abff', " + ", ".join(["length(randomblob(16000000))"] * 300),
}


@pytest.fixture(scope="module")
def shard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """One shard with a 1 s statement limit, held to its memory budget (the default --memory-mib): every
    statement below runs against it, and it must end the module alive and within that budget."""
    env = {"LOOT_STATEMENT_SECONDS": "1", "LOOT_OPEN_DATABASES": "1", "LOOT_MEMORY_MIB": str(BUDGET_MIB)}
    cluster = start_cluster(tmp_path_factory.mktemp("hostile-time"), shards=1, env=env)
    process = cluster.shards["shard-0"].process
    cap_memory(process.pid, BUDGET_MIB)
    yield cluster
    try:
        assert cluster.shards["shard-0"].alive() and cluster.shards["shard-0"].process is process, "the shard died"
        assert status_kib(process.pid, "VmHWM") < BUDGET_MIB * 1024
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def client(shard: LocalCluster) -> Iterator[Client]:
    with Client(shard.address) as client:
        yield client


def answer(call: Callable[[], object]) -> str:
    """"OK", or the reason of Loot's answer; fails if the answer is the client library's own (no ErrorInfo)."""
    try:
        call()
    except grpc.RpcError as error:
        info = error_info(error)
        assert info is not None, f"no answer from Loot: {error.code()} {error.details()}"
        return info.reason
    return "OK"


@pytest.mark.parametrize("name", HOSTILE)
def test_a_statement_stops_at_its_limit_whatever_one_step_does(client: Client, key: Key, name: str) -> None:
    sql, expected = HOSTILE[name]
    assert answer(lambda: client.execute(mint(key, "hostile", name), sql, timeout=GENEROUS)) == expected


def test_a_neighbours_cheap_request_is_served_while_another_account_runs_hostile_statements(
        client: Client, key: Key) -> None:
    hostile = _rows_forever(f"instr({_text(2_200_000)}, {_text(1_100_000, 'b')}) = 0")
    tokens = [mint(key, "hostile", f"tenant-{i}") for i in range(10)]  # ten databases, more than the workers
    neighbour = mint(Key.generate(), "calm", "tenant", schema=NOTES)  # another account
    with ThreadPoolExecutor(len(tokens)) as pool:
        running = [pool.submit(answer, lambda token=token: client.execute(token, hostile, timeout=GENEROUS))
                   for token in tokens]
        served = 0
        while not any(call.done() for call in running):
            client.execute(neighbour, "INSERT INTO notes (body) VALUES ('cheap')", timeout=GENEROUS / 2)
            served += 1
        assert [call.result() for call in running] == ["INTERRUPTED"] * len(tokens)
    assert served > 0


def test_deadline_exceeded_means_nothing_applied(client: Client, key: Key) -> None:
    token = mint(key, "deadline", "insert", schema=NOTES)
    client.execute(token, "SELECT 1")  # created, so the deadline falls in the statement
    with pytest.raises(grpc.RpcError) as failed:
        client.execute(token, f"INSERT INTO notes (body) SELECT 'late' WHERE {LONG_STEP} > 0", timeout=0.5)
    assert failed.value.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNKNOWN)
    # The shard stopped at its deadline and rolled back: whatever the answer, nothing was applied.
    assert rows(client.execute(token, "SELECT count(*) FROM notes", timeout=GENEROUS).result) == [(0,)]


def test_a_call_given_up_keeps_its_database_until_its_work_ends(client: Client, key: Key) -> None:
    """A destroy whose caller gave up must not run beside the next request on a second connection (the
    shard keeps one open database, so any other database's request closes the idle ones)."""
    victim, other = mint(key, "race", "victim", schema=NOTES), mint(key, "race", "other")
    doomed = mint(key, "race", "victim", destroy=True)
    client.execute(other, "SELECT 1")
    client.execute(victim, "INSERT INTO notes (body) VALUES ('first')")
    with pytest.raises(grpc.RpcError) as failed:
        client.execute(doomed, f"SELECT {LONG_STEP}", timeout=0.5)
    shards_answer = error_info(failed.value)  # None: the client library's own deadline fired first
    evicting = threading.Thread(target=client.execute, args=(other, "SELECT 1"), kwargs={"timeout": GENEROUS})
    evicting.start()  # closes the victim's connection, if the victim counted as idle
    # Time for that to begin while the destroy's step still runs, so the write below would open a second
    # connection if it could (it must not: whatever the timing, the write is kept).
    time.sleep(0.3)
    client.execute(victim, "INSERT INTO notes (body) VALUES ('second')", timeout=GENEROUS)
    evicting.join()
    client.execute(other, "SELECT 1", timeout=GENEROUS)  # closes the victim's connection: read it from its file
    bodies = [body for (body,) in rows(client.execute(victim, "SELECT body FROM notes", timeout=GENEROUS).result)]
    assert "second" in bodies, "a write acknowledged after the destroy's answer was lost"
    if shards_answer is not None and shards_answer.reason == "DEADLINE_EXCEEDED":
        assert "first" in bodies, "answered DEADLINE_EXCEEDED, yet the destroy was applied"


@pytest.mark.parametrize("name", LONG_ROWS)
def test_a_row_of_many_operations_on_big_values_is_refused_and_a_neighbour_is_served(
        client: Client, key: Key, name: str) -> None:
    assert answer(lambda: client.execute(mint(key, "long-row", name), LONG_ROWS[name], timeout=GENEROUS)) == \
        "TOO_EXPENSIVE"
    neighbour = mint(Key.generate(), "calm", "long-row", schema=NOTES)
    client.execute(neighbour, "INSERT INTO notes (body) VALUES ('cheap')", timeout=GENEROUS)


def test_a_big_column_loaded_again_and_again_is_refused(client: Client, key: Key) -> None:
    token = mint(key, "long-row", "column", schema=NOTES)
    client.execute(token, "INSERT INTO notes (id, body) VALUES (1, printf('%.*c', 8000000, 'a'))", timeout=GENEROUS)
    each_loads_it = "SELECT " + " AND ".join(["body > id"] * 600) + " FROM notes"  # a load counts 1/4
    assert answer(lambda: client.execute(token, each_loads_it, timeout=GENEROUS)) == "TOO_EXPENSIVE"


def test_statements_within_the_value_operations_budget_run(client: Client, key: Key) -> None:
    token = mint(key, "budget", "ordinary", schema=NOTES)
    client.execute(token, "INSERT INTO notes (id, body) VALUES (1, 'ab'), (2, 'cd')")
    ordinary = ("SELECT upper(body) || ' ' || printf('%d', id), substr(body, 1, 1), hex(body), quote(body), "
                "length(body), abs(id), typeof(body) FROM notes ORDER BY id")
    assert rows(client.execute(token, ordinary).result) == [
        ("AB 1", "a", "6162", "'ab'", 2, 1, "text"), ("CD 2", "c", "6364", "'cd'", 2, 2, "text")]
    def upper_columns(count: int) -> str:
        return f"SELECT {', '.join(f'upper(?{i + 1})' for i in range(count))}"

    # Each upper is one operation and a copy into the row a quarter: 25 are 31.25, within the default 32.
    assert rows(client.execute(token, upper_columns(25), ["ab"] * 25).result) == [("AB",) * 25]
    assert answer(lambda: client.execute(token, upper_columns(26), ["ab"] * 26)) == "TOO_EXPENSIVE"

def test_a_changed_schema_is_counted_again(client: Client, key: Key) -> None:
    """Counts are kept per SQL text: a schema whose view now makes values must not keep the old count."""
    plain = "CREATE VIEW loud AS SELECT id, body AS shout FROM notes"
    making = "CREATE VIEW loud AS SELECT id, upper(body) AS shout FROM notes"
    each_use = f"SELECT {', '.join(['shout'] * 40)} FROM loud"  # SQLite copies the view's column to each use
    first = mint(key, "budget", "schema", schema=f"{NOTES} {plain};")
    client.execute(first, "INSERT INTO notes (body) VALUES ('ab')")
    assert rows(client.execute(first, each_use).result) == [("ab",) * 40]
    then = mint(key, "budget", "schema", schema=f"{NOTES} {making};")
    assert answer(lambda: client.execute(then, each_use)) == "TOO_EXPENSIVE"
