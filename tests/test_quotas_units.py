"""Per-account quotas inside one shard, without processes (docs/operations.md#quotas): each shard's share
of a quota, the catalog's per-account usage through every row change, creations refused past the
share and freed by destroy, and writes held to the bytes share by SQLite's page limit."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path

import grpc
import pytest

from loot.ids import database_id
from loot.internal.v1 import shard_pb2
from loot.membership import Membership, MembershipSource
from loot.ring import Ring
from loot.shard import engine
from loot.shard.catalog import Catalog, Entry, Identity, Usage
from loot.shard.databases import Databases
from loot.shard.limits import Limits
from loot.shard.quotas import BYTES, DATABASES, Quotas, bytes_share, database_share
from loot.shard.storage import Storage
from loot.status import Fault
from loot.v1 import database_pb2 as pb
from tests.schemas import open_table

SCHEMA = open_table("CREATE TABLE t (x BLOB)", "t")


def context(tenant: str, account: str = "acct", destroy: bool = False) -> shard_pb2.Context:
    return shard_pb2.Context(database_id=database_id(account, "app", tenant), account=account, name="app",
                             tenant=tenant, schema=SCHEMA, destroy=destroy)


def alone(databases: int = 0, bytes_: int = 0) -> Quotas:
    """The quotas of a cluster of one shard, which owns every database id."""
    return Quotas(databases, bytes_, "shard-0", MembershipSource(Membership(0, {"shard-0": ""})))


async def run(databases: Databases, shard_context: shard_pb2.Context, *sql: str, params=()) -> engine.Outcome:
    statements = [pb.Statement(sql=text, params=list(params)) for text in sql]
    work = functools.partial(engine.run, context=shard_context, statements=statements, deadline=None)
    inline = functools.partial(engine.run_inline, context=shard_context, statements=statements, deadline=None)
    return await databases.run(shard_context.database_id, work, SCHEMA, inline=inline,
                               account=shard_context.account, identity=Identity.of(shard_context))


def refusal(error: pytest.ExceptionInfo[Fault], reason: str) -> dict[str, str]:
    assert error.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED and error.value.reason == reason, error.value
    return error.value.metadata


def test_the_ring_fractions_add_up_and_a_lone_shard_owns_everything() -> None:
    ring = Ring(["shard-0", "shard-1", "shard-2"])
    fractions = [ring.fraction(name) for name in ring.names]
    assert sum(fractions) == pytest.approx(1.0) and all(0.2 < fraction < 0.5 for fraction in fractions)
    assert Ring(["only"]).fraction("only") == 1.0 and ring.fraction("elsewhere") == 0.0


def test_a_share_is_the_fair_part_plus_a_margin_never_over_the_quota() -> None:
    assert database_share(1000, 1 / 3) == 407  # 333.3 + 4 × 18.3
    assert database_share(10, 1 / 3) == 10  # small quotas: the margin passes the quota itself
    assert database_share(5, 1.0) == 5
    assert database_share(100_000, 1 / 4) == 25_633  # 4 shards: at most 2.6 % over the quota
    assert bytes_share(1000, 1 / 3, 1) == 1000  # one database holds all of an account's bytes on its shard
    assert bytes_share(1000, 1 / 3, 100) == 467  # 1/3 × 1.4
    assert bytes_share(1000, 1.0, 100) == 1000


def test_the_catalog_counts_each_accounts_databases_and_bytes_through_every_change(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path, power_safe=False)
    for number, account in enumerate(["a", "a", "b"]):
        catalog.add(Entry(f"{number:064x}", account, "app", str(number), 0.0, 0.0, 100, ""))
    assert catalog.usage("a") == Usage(2, 200) and catalog.usage("b") == Usage(1, 100)
    catalog.wrote(f"{0:064x}", 300, "")
    catalog.wrote(f"{0:064x}", 250, "")  # a second write within the second: counted from the first's size
    assert catalog.usage("a") == Usage(2, 350)
    catalog.add(Entry(f"{1:064x}", "a", "app", "1", 0.0, 0.0, 40, ""))  # a row replaced (a copy installed again)
    assert catalog.usage("a") == Usage(2, 290)
    catalog.remove(f"{2:064x}")
    assert catalog.usage("b") == Usage() and [account for account, _ in catalog.usages()] == ["a"]
    catalog.close()
    reopened = Catalog(tmp_path, power_safe=False)
    assert reopened.usage("a") == Usage(2, 290), "counted again from the rows when the shard starts"
    assert reopened.forget_missing(lambda database: database != f"{0:064x}") == 1
    assert reopened.usage("a") == Usage(1, 40)


def test_a_refused_addition_leaves_no_row_and_no_count(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path, power_safe=False)

    def refuse(usage: Usage) -> None:
        raise Fault(grpc.StatusCode.RESOURCE_EXHAUSTED, DATABASES, "no")

    with pytest.raises(Fault):
        catalog.add(Entry("f" * 64, "a", "app", "x", 0.0, 0.0, 100, ""), refuse)
    assert catalog.usage("a") == Usage() and catalog.get("f" * 64) is None


def test_creations_past_the_share_are_refused_and_a_destroy_frees_one(tmp_path: Path) -> None:
    async def scenario() -> None:
        databases = Databases(Storage(tmp_path, catalog=True, quotas=alone(databases=3)))
        for tenant in "abc":
            await run(databases, context(tenant), "SELECT 1")
        with pytest.raises(Fault) as refused:
            await run(databases, context("d"), "SELECT 1")
        assert refusal(refused, "ACCOUNT_DATABASE_QUOTA") == {"limit": "3", "shard_limit": "3", "count": "3",
                                                                "shard": "shard-0"}
        assert not databases.storage.path(context("d").database_id).exists()
        await run(databases, context("b"), "SELECT count(*) FROM t")  # existing databases serve on
        await run(databases, context("a"), "INSERT INTO t VALUES (x'00')")
        await run(databases, context("x", account="other"), "SELECT 1")  # another account has its own count
        await run(databases, context("a", destroy=True), "SELECT 1")
        await run(databases, context("d"), "SELECT 1")
        assert databases.storage.catalog.usage("acct").databases == 3
        await databases.close()

    asyncio.run(scenario())


def test_writes_past_the_bytes_share_are_refused_and_reads_and_shrinking_writes_go_on(tmp_path: Path) -> None:
    async def scenario() -> None:
        quota = 256 * 1024
        storage = Storage(tmp_path, catalog=True, quotas=alone(bytes_=quota))
        databases = Databases(storage)
        await run(databases, context("a"), "SELECT 1")
        written = 0
        with pytest.raises(Fault) as refused:
            for _ in range(100):
                await run(databases, context("a"), "INSERT INTO t VALUES (zeroblob(10000))")
                written += 1
        metadata = refusal(refused, BYTES)
        assert metadata["limit"] == str(quota) and int(metadata["bytes"]) <= quota
        assert 0 < written < 100 and storage.catalog.usage("acct").bytes <= quota, "never past the share"
        counted = await run(databases, context("a"), "SELECT count(*) FROM t")
        assert counted.results[0].rows[0].values[0].integer == written
        await run(databases, context("a"), "DELETE FROM t WHERE rowid = 1")  # needs no new page
        await run(databases, context("a"), "INSERT INTO t VALUES (zeroblob(5000))")  # fits in the freed pages
        with pytest.raises(Fault) as new_database:
            await run(databases, context("b"), "SELECT 1")
        refusal(new_database, BYTES)
        await run(databases, context("a", destroy=True), "SELECT 1")
        await run(databases, context("b"), "INSERT INTO t VALUES (zeroblob(10000))")  # the bytes were freed
        await databases.close()

    asyncio.run(scenario())


def test_without_quotas_nothing_is_capped(tmp_path: Path) -> None:
    async def scenario() -> None:
        databases = Databases(Storage(tmp_path, catalog=True, quotas=alone()), Limits())
        for tenant in "abcdef":
            await run(databases, context(tenant), "INSERT INTO t VALUES (zeroblob(100000))")
        assert databases.storage.catalog.usage("acct").databases == 6
        await databases.close()

    asyncio.run(scenario())


def test_an_accounts_databases_share_its_room_as_they_take_turns_writing(tmp_path: Path) -> None:
    """Each write on one database moves the room of the others, already open (their authorizer installed):
    their page limits follow, and the first write finding none is refused with the quota's reason."""
    async def scenario() -> None:
        storage = Storage(tmp_path, catalog=True, quotas=alone(bytes_=512 * 1024))
        databases = Databases(storage)
        written = 0
        with pytest.raises(Fault) as refused:
            for _ in range(100):
                for tenant in "ab":
                    await run(databases, context(tenant), "INSERT INTO t VALUES (zeroblob(10000))")
                    written += 1
        assert refusal(refused, BYTES)["limit"] == str(512 * 1024)
        assert 10 < written < 60 and storage.catalog.usage("acct").bytes <= 512 * 1024
        await databases.close()

    asyncio.run(scenario())
