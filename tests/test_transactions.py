"""Interactive transactions (docs/transactions.md) through a real router and shards: the SDK's
`with db.transaction()`, the Transaction stream's rules, leases on the database, limits and failures."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from loot import AsyncClient, Client, Key
from loot.errors import (Aborted, InvalidArgument, LootError, OutcomeUnknown, PermissionDenied, ResourceExhausted,
                         RuleViolation, Unavailable)
from loot.ids import database_id
from loot.ring import Ring
from loot.tokens import mint
from loot.v1 import database_pb2 as pb
from loot.v1 import database_pb2_grpc
from tests.conftest import refused, start_cluster
from tests.schemas import open_table

ITEMS = open_table("CREATE TABLE items (id INTEGER PRIMARY KEY, body TEXT NOT NULL)", "items")
NOTES = """
CREATE TABLE notes (id INTEGER PRIMARY KEY, owner TEXT NOT NULL, body TEXT);
INSERT INTO _filters VALUES ('notes', 'own', 'owner = claim(''user.id'')');
INSERT INTO _rules VALUES ('notes', 'write', 'own', 'owner = claim(''user.id'')');
"""
WAIT = 60  # seconds: generous bounds on waits for a condition, never a measurement
pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def sdk(cluster) -> Iterator[Client]:
    with Client(cluster.address) as client:
        yield client


def count(db) -> int:
    return db.execute("SELECT count(*) FROM items").scalar()


def test_commit_rollback_and_an_error_that_leaves_it_open(sdk: Client, key: Key) -> None:
    db = sdk.database("tx", tenant="basics", key=key, schema=ITEMS)
    with db.transaction() as tx:
        assert tx.execute("INSERT INTO items (body) VALUES (?)", ["one"]).rows_written == 1
        with pytest.raises(InvalidArgument):
            tx.execute("SELEC nonsense")
        results = tx.batch([("INSERT INTO items (body) VALUES (?)", ["two"]), "SELECT body FROM items ORDER BY id"])
        assert results[1].rows == [("one",), ("two",)]
    assert count(db) == 2
    with pytest.raises(KeyError):
        with db.transaction() as tx:
            tx.execute("INSERT INTO items (body) VALUES ('gone')")
            raise KeyError("the application changed its mind")
    assert count(db) == 2
    with db.transaction() as tx:
        tx.execute("DELETE FROM items")
        tx.rollback()
        with pytest.raises(LootError) as ended:
            tx.execute("SELECT 1")
        assert ended.value.reason == "TRANSACTION_ENDED"
    assert count(db) == 2


def test_async_transaction(cluster, key: Key) -> None:
    async def main() -> int:
        async with AsyncClient(cluster.address) as client:
            db = client.database("tx", tenant="async", key=key, schema=ITEMS)
            async with db.transaction() as tx:
                await tx.execute("INSERT INTO items (body) VALUES ('a')")
                seen = (await tx.execute("SELECT count(*) FROM items")).scalar()
            with pytest.raises(ZeroDivisionError):
                async with db.transaction() as tx:
                    await tx.execute("INSERT INTO items (body) VALUES ('b')")
                    1 / 0
            return seen, (await db.execute("SELECT count(*) FROM items")).scalar()

    assert asyncio.run(main()) == (1, 1)


def test_two_transactions_on_one_database_serialize(sdk: Client, key: Key) -> None:
    db = sdk.database("tx", tenant="serial", key=key, schema=ITEMS)
    events: list[str] = []
    seen: list[int] = []

    def second() -> None:
        with db.transaction() as tx:
            events.append("second begun")
            seen.append(tx.execute("SELECT count(*) FROM items").scalar())
            tx.execute("INSERT INTO items (body) VALUES ('second')")

    with db.transaction() as tx:
        tx.execute("INSERT INTO items (body) VALUES ('first')")
        waiting = threading.Thread(target=second)
        waiting.start()
        for _ in range(20):  # the first goes on while the second waits for the database
            assert tx.execute("SELECT count(*) FROM items").scalar() == 1
        events.append("first committing")
    waiting.join(WAIT)
    assert events == ["first committing", "second begun"]
    assert seen == [1] and count(db) == 2


def test_transactions_on_two_databases_run_at_once(sdk: Client, key: Key) -> None:
    one = sdk.database("tx", tenant="parallel-1", key=key, schema=ITEMS)
    two = sdk.database("tx", tenant="parallel-2", key=key, schema=ITEMS)
    with one.transaction() as first:
        first.execute("INSERT INTO items (body) VALUES ('one')")
        with two.transaction() as second:  # would wait forever (then fail) if one database held the other
            second.execute("INSERT INTO items (body) VALUES ('two')")
        assert count(two) == 1
    assert count(one) == 1


def test_an_execute_waits_behind_a_transaction_and_sees_its_rows(sdk: Client, key: Key) -> None:
    db = sdk.database("tx", tenant="behind", key=key, schema=ITEMS)
    answers: list[int] = []
    with db.transaction() as tx:
        tx.execute("INSERT INTO items (body) VALUES ('committed')")
        reader = threading.Thread(target=lambda: answers.append(count(db)))
        reader.start()
        tx.execute("INSERT INTO items (body) VALUES ('also committed')")
    reader.join(WAIT)
    assert answers == [2]


def test_filters_and_rules_hold_inside(sdk: Client, key: Key) -> None:
    alice = sdk.open(mint(key, "tx-notes", "t", schema=NOTES, user={"id": "alice"}))
    bob = sdk.open(mint(key, "tx-notes", "t", schema=NOTES, user={"id": "bob"}))
    bob.execute("INSERT INTO notes (owner, body) VALUES ('bob', 'his')")
    with alice.transaction() as tx:
        tx.execute("INSERT INTO notes (owner, body) VALUES ('alice', 'hers')")
        with pytest.raises(RuleViolation):
            tx.execute("INSERT INTO notes (owner, body) VALUES ('bob', 'forged')")
        assert tx.execute("SELECT owner, body FROM notes").rows == [("alice", "hers")]
        assert tx.execute("UPDATE notes SET body = 'mine now'").rows_written == 1
    assert bob.execute("SELECT owner, body FROM notes").rows == [("bob", "his")]


def test_a_readonly_tokens_transaction_cannot_write(sdk: Client, key: Key) -> None:
    writer = sdk.database("tx", tenant="readonly", key=key, schema=ITEMS)
    writer.execute("INSERT INTO items (body) VALUES ('there')")
    reader = sdk.database("tx", tenant="readonly", key=key, schema=ITEMS, readonly=True)
    with reader.transaction() as tx:
        with pytest.raises(PermissionDenied):
            tx.execute("DELETE FROM items")
        assert tx.execute("SELECT body FROM items").rows == [("there",)]
    assert count(writer) == 1


def test_the_first_message_must_begin(cluster, key: Key) -> None:
    token = mint(key, "tx", "raw", schema=ITEMS)
    with grpc.insecure_channel(cluster.address) as channel:
        stub = database_pb2_grpc.DatabaseStub(channel)
        statements = pb.TransactionRequest(statements=pb.BatchRequest(statements=[pb.Statement(sql="SELECT 1")]))
        refused(lambda: list(stub.Transaction(iter([statements]), metadata=(("authorization", f"Bearer {token}"),),
                                              timeout=WAIT)),
                grpc.StatusCode.INVALID_ARGUMENT, "BAD_TRANSACTION")


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory):
    """A cluster with short transaction limits, holding at most 64 KiB of requests at once."""
    cluster = start_cluster(tmp_path_factory.mktemp("limited"),
                            env={"LOOT_TRANSACTION_IDLE_SECONDS": "1", "LOOT_TRANSACTION_SECONDS": "3",
                                 "LOOT_REQUEST_BYTES": str(64 * 1024)})
    yield cluster
    cluster.stop()


def test_the_idle_limit_rolls_back(limited, key: Key) -> None:
    with Client(limited.address) as client:
        db = client.database("tx", tenant="idle", key=key, schema=ITEMS)
        with pytest.raises(Aborted) as aborted:
            with db.transaction() as tx:
                tx.execute("INSERT INTO items (body) VALUES ('never')")
                time.sleep(2)  # past the 1 s idle limit
                tx.execute("SELECT 1")
        assert aborted.value.reason == "TRANSACTION_IDLE"
        assert count(db) == 0


def test_the_total_limit_rolls_back(limited, key: Key) -> None:
    with Client(limited.address) as client:
        db = client.database("tx", tenant="total", key=key, schema=ITEMS)
        with pytest.raises(Aborted) as aborted:
            with db.transaction() as tx:
                tx.execute("INSERT INTO items (body) VALUES ('never')")
                until = time.monotonic() + WAIT
                while time.monotonic() < until:  # busy, never idle, until the 3 s limit ends it
                    time.sleep(0.2)
                    tx.execute("SELECT 1")
        assert aborted.value.reason == "TRANSACTION_TIMEOUT"
        assert count(db) == 0


def test_a_message_over_the_request_bytes_is_refused_and_the_transaction_goes_on(limited, key: Key) -> None:
    with Client(limited.address) as client:
        db = client.database("tx", tenant="held", key=key, schema=ITEMS)
        with db.transaction() as tx:
            tx.execute("INSERT INTO items (body) VALUES ('small')")
            with pytest.raises(ResourceExhausted) as refused_message:
                tx.execute("INSERT INTO items (body) VALUES (?)", ["x" * 100_000])
            assert refused_message.value.reason == "REQUEST_TOO_LARGE"
        assert count(db) == 1


CLIENT = """
import sys, time
from loot import Client, Key
key = Key.load(sys.argv[3])
with Client(sys.argv[1]) as client:
    db = client.database("tx", tenant="vanished", key=key, schema=sys.argv[2])
    tx = db.transaction().__enter__()
    tx.execute("INSERT INTO items (body) VALUES ('never')")
    print("open", flush=True)
    time.sleep(600)
"""


def test_a_killed_client_frees_the_database(limited, key: Key, tmp_path: Path) -> None:
    key.save(tmp_path / "key.json")
    child = subprocess.Popen([sys.executable, "-c", CLIENT, limited.address, ITEMS, str(tmp_path / "key.json")],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "open"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(WAIT)
    with Client(limited.address, timeout=WAIT) as client:
        assert count(client.database("tx", tenant="vanished", key=key, schema=ITEMS)) == 0


@pytest.mark.parametrize("direct", [False, True])
def test_a_killed_shard_leaves_nothing(own_cluster, key: Key, direct: bool) -> None:
    """Through the router, which says why; or straight to the shard, whose stream breaks as a router's would."""
    ring = Ring(own_cluster.names)
    tenant = next(f"t{i}" for i in range(100) if ring.owner(database_id(key.account, "tx", f"t{i}")) == "shard-0")
    with Client(own_cluster.address, timeout=WAIT, direct=direct) as client:
        db = client.database("tx", tenant=tenant, key=key, schema=ITEMS)
        db.execute("INSERT INTO items (body) VALUES ('before')")
        tx = db.transaction().__enter__()
        tx.execute("INSERT INTO items (body) VALUES ('never')")
        own_cluster.shards["shard-0"].signal(signal.SIGKILL)
        own_cluster.shards["shard-0"].wait(WAIT)
        with pytest.raises((Aborted, Unavailable)) as lost:
            tx.execute("SELECT 1")
        # Straight to the shard (its stream broke: ""), or through the router while the SDK's channel to it connected.
        assert lost.value.reason in ("TRANSACTION_ABORTED", "SHARD_UNAVAILABLE", *([""] if direct else []))
        own_cluster.restart_shard("shard-0")
        assert _eventually(lambda: db.execute("SELECT body FROM items").rows) == [("before",)]


def test_a_restarted_shard_takes_the_next_call_at_once(own_cluster, key: Key) -> None:
    """The router's channel to a shard that was down waits out its reconnection backoff: the first call
    after the shard listens again, a transaction or an Execute, runs, and is not refused UNAVAILABLE."""
    ring = Ring(own_cluster.names)
    tenant = next(f"t{i}" for i in range(100) if ring.owner(database_id(key.account, "tx", f"t{i}")) == "shard-0")
    with Client(own_cluster.address, timeout=WAIT) as client:
        db = client.database("tx", tenant=tenant, key=key, schema=ITEMS)
        db.execute("INSERT INTO items (body) VALUES ('before')")
        for first in ("transaction", "execute") * 2:
            own_cluster.shards["shard-0"].signal(signal.SIGKILL)
            own_cluster.shards["shard-0"].wait(WAIT)
            with pytest.raises(Unavailable):
                db.execute("SELECT 1")  # the router's channel to shard-0 is now backing off
            own_cluster.restart_shard("shard-0")
            if first == "transaction":
                with db.transaction() as tx:
                    tx.execute("INSERT INTO items (body) VALUES ('after')")
            else:
                db.execute("INSERT INTO items (body) VALUES ('after')")
        assert count(db) == 5


def test_a_killed_router_leaves_nothing(own_cluster, key: Key) -> None:
    with Client(own_cluster.address, timeout=WAIT) as client:
        db = client.database("tx", tenant="router-lost", key=key, schema=ITEMS)
        tx = db.transaction().__enter__()
        tx.execute("INSERT INTO items (body) VALUES ('never')")
        own_cluster.router.signal(signal.SIGKILL)
        own_cluster.router.wait(WAIT)
        with pytest.raises(Unavailable):
            tx.execute("SELECT 1")
        own_cluster.restart("router")
        own_cluster.router.wait_ready()
        assert _eventually(lambda: count(db)) == 0  # the shard rolled back when its stream went with the router


def _eventually(read):
    """`read()` once the cluster answers again (a restarted process takes a moment to be reached)."""
    until = time.monotonic() + WAIT
    while True:
        try:
            return read()
        except Unavailable:
            if time.monotonic() > until:
                raise
            time.sleep(0.2)


SLOW_AFTER = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) "
              "SELECT count(*) FROM c")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


@pytest.fixture
def patient(tmp_path: Path) -> Iterator:
    """A cluster for one test whose statements and transactions may run long (`after` keeps a shard busy)."""
    cluster = start_cluster(tmp_path / "patient", env={"LOOT_STATEMENT_SECONDS": str(WAIT),
                                                      "LOOT_TRANSACTION_SECONDS": str(WAIT)})
    yield cluster
    cluster.stop()


def test_a_shard_lost_during_the_commit_is_an_unknown_outcome(patient, key: Key) -> None:
    ring = Ring(patient.names)
    tenant = next(f"c{i}" for i in range(100) if ring.owner(database_id(key.account, "tx", f"c{i}")) == "shard-0")
    shard = patient.shards["shard-0"]
    with Client(patient.address, timeout=WAIT) as client:
        db = client.database("tx", tenant=tenant, key=key, schema=ITEMS, after=SLOW_AFTER)
        tx = db.transaction().__enter__()
        tx.execute("INSERT INTO items (body) VALUES ('maybe')")
        idle = _cpu_seconds(shard.process.pid)
        outcome: list[BaseException] = []
        committing = threading.Thread(target=lambda: _catch(tx.commit, outcome))
        committing.start()
        until = time.monotonic() + WAIT
        while _cpu_seconds(shard.process.pid) < idle + 1 and time.monotonic() < until:
            time.sleep(0.05)  # until the shard is busy running `after`, i.e. committing
        shard.signal(signal.SIGKILL)
        committing.join(WAIT)
    assert len(outcome) == 1 and isinstance(outcome[0], OutcomeUnknown), outcome


def _catch(call, into: list[BaseException]) -> None:
    try:
        call()
    except BaseException as error:
        into.append(error)


def test_transactions_that_end_normally_are_logged_ok(own_cluster, key: Key) -> None:
    async def asynchronous() -> None:
        async with AsyncClient(own_cluster.address) as client:
            async with client.database("tx", tenant="logged", key=key, schema=ITEMS).transaction() as tx:
                await tx.execute("SELECT 1")

    with Client(own_cluster.address) as client:
        with client.database("tx", tenant="logged", key=key, schema=ITEMS).transaction() as tx:
            tx.execute("SELECT 1")
    asyncio.run(asynchronous())
    until = time.monotonic() + WAIT
    while len(lines := [line for line in own_cluster.sink.lines if "Transaction code=" in line]) < 4:
        assert time.monotonic() < until, lines
        time.sleep(0.1)
    assert all("code=OK" in line for line in lines), lines  # the SDK never cancels a finished stream
