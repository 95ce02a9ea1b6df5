"""The account methods (docs/fleet.md) through a real router and shards: listing and census across
shards, exact after creates and destroys, pages without gaps or repeats while databases are made,
account tokens only, and one account never seeing another's databases."""

from __future__ import annotations

import json
import threading
import time

import grpc
import pytest
from jose import jws

from loot.cli.local_cluster import LocalCluster
from loot.errors import LootError
from loot import Client
from loot.shard.schema.history import digest
from loot.tokens import Key, mint, mint_account
from loot.tokens.claims import COMPAT_DATES, ISSUER
from loot.v1 import database_pb2 as pb
from loot.v1 import database_pb2_grpc
from tests.client import Client as RawClient
from tests.conftest import refused
from tests.test_cli import loot
from tests.schemas import open_table

NOTES = open_table("CREATE TABLE notes (n INTEGER)", "notes")
NOTES_V2 = open_table("CREATE TABLE notes (n INTEGER, extra TEXT)", "notes")
ACCOUNT_METHODS = {"ListDatabases": pb.ListDatabasesRequest(), "Census": pb.CensusRequest(),
                   "DestroyDatabases": pb.DestroyDatabasesRequest(name="app", tenants=["alice"],
                                                                  confirm="destroy 1 databases of app")}


def _touch(cluster: LocalCluster, key: Key, name: str, tenants: list[str], schema: str = NOTES) -> None:
    with RawClient(cluster.address) as client:
        for tenant in tenants:
            client.execute(mint(key, name, tenant, schema=schema), "INSERT INTO notes (n) VALUES (1)")


def _account_call(cluster: LocalCluster, method: str, token: str):
    with grpc.insecure_channel(cluster.address) as channel:
        stub = database_pb2_grpc.AccountStub(channel)
        return getattr(stub, method)(ACCOUNT_METHODS[method], metadata=(("authorization", f"Bearer {token}"),),
                                     timeout=30)


def test_listing_and_census_are_exact_after_creates_and_destroys(cluster: LocalCluster) -> None:
    key = Key.generate()
    _touch(cluster, key, "app", [f"t{i:02}" for i in range(30)])
    _touch(cluster, key, "app", [f"new{i}" for i in range(5)], NOTES_V2)
    _touch(cluster, key, "logs", ["a", "b"])
    with RawClient(cluster.address) as client:
        for tenant in ("t00", "t01", "t02"):
            client.execute(mint(key, "app", tenant, destroy=True), "SELECT 1")
    with Client(cluster.address) as sdk:
        account = sdk.account(key)
        listed = [(info.name, info.tenant) for info in account.databases(page_size=7)]
        expected = sorted([("app", f"t{i:02}") for i in range(3, 30)] + [("app", f"new{i}") for i in range(5)]
                          + [("logs", "a"), ("logs", "b")])
        assert listed == expected
        assert [info.tenant for info in account.databases(name="app", tenant_prefix="new")] == \
            [f"new{i}" for i in range(5)]
        first = next(account.databases(name="logs"))
        assert first.bytes > 0 and first.created <= first.last_write and first.schema_hash == digest(NOTES)
        census = account.census()
        groups = {(group.name, group.schema_hash): group.databases for group in census.groups}
        assert groups == {("app", digest(NOTES)): 27, ("app", digest(NOTES_V2)): 5, ("logs", digest(NOTES)): 2}
        assert census.databases == 34 and census.bytes == sum(info.bytes for info in account.databases())


def test_a_write_moves_last_write_size_and_schema_hash(cluster: LocalCluster) -> None:
    key = Key.generate()
    _touch(cluster, key, "app", ["alice"])
    with Client(cluster.address) as sdk:
        before = next(sdk.account(key).databases())
        with RawClient(cluster.address) as client:
            client.execute(mint(key, "app", "alice", schema=NOTES_V2),
                           "INSERT INTO notes (n, extra) VALUES (2, zeroblob(100000))")
        after = next(sdk.account(key).databases())
    assert after.last_write > before.last_write and after.bytes > before.bytes + 90000
    assert (before.schema_hash, after.schema_hash) == (digest(NOTES), digest(NOTES_V2))


def test_a_database_a_transaction_creates_is_listed_and_its_writes_counted(cluster: LocalCluster) -> None:
    """A transaction's lease opens the database as a request does: named in the catalog when it creates it,
    its writes moving last write and size."""
    key = Key.generate()
    with Client(cluster.address) as sdk:
        db = sdk.database("txn-app", tenant="alice", key=key, schema=NOTES)
        with db.transaction() as tx:
            tx.execute("INSERT INTO notes (n) VALUES (1)")
        before = next(sdk.account(key).databases())
        with db.transaction() as tx:
            tx.execute("INSERT INTO notes (n) VALUES (zeroblob(100000))")
        after = next(sdk.account(key).databases())
    assert (before.name, before.tenant) == ("txn-app", "alice")
    assert after.last_write > before.last_write and after.bytes > before.bytes + 90000


def test_pages_have_no_gaps_or_repeats_while_databases_are_made(cluster: LocalCluster) -> None:
    key = Key.generate()
    existing = [f"e{i:03}" for i in range(60)]
    _touch(cluster, key, "app", existing)
    made: list[str] = []
    stop = threading.Event()

    def make() -> None:
        with RawClient(cluster.address) as client:
            for i in range(10**6):
                if stop.is_set():
                    return
                tenant = f"{'d' if i % 2 else 'f'}{i:04}"  # before and after the existing ones
                client.execute(mint(key, "app", tenant, schema=NOTES), "SELECT 1")
                made.append(tenant)

    maker = threading.Thread(target=make)
    maker.start()
    try:
        with Client(cluster.address) as sdk:
            listed = [info.tenant for info in sdk.account(key).databases(page_size=5)]
    finally:
        stop.set()
        maker.join()
    assert len(listed) == len(set(listed)), "a database listed twice"
    assert listed == sorted(listed)
    assert set(existing) <= set(listed), "a database that existed throughout was skipped"
    assert set(listed) <= set(existing) | set(made)


def test_a_database_token_is_refused_on_every_account_method(cluster: LocalCluster) -> None:
    key = Key.generate()
    for method in ACCOUNT_METHODS:
        refused(lambda: _account_call(cluster, method, mint(key, "app", "alice")),
                grpc.StatusCode.PERMISSION_DENIED, "DATABASE_TOKEN")
    with grpc.insecure_channel(cluster.address) as channel:  # the streaming one
        stream = database_pb2_grpc.AccountStub(channel).Rollout(
            pb.RolloutRequest(name="app", schema=NOTES), timeout=30,
            metadata=(("authorization", f"Bearer {mint(key, 'app', 'alice')}"),))
        refused(lambda: list(stream), grpc.StatusCode.PERMISSION_DENIED, "DATABASE_TOKEN")


def test_an_account_token_is_refused_on_every_database_method(cluster: LocalCluster) -> None:
    token = mint_account(Key.generate())
    with RawClient(cluster.address) as client:
        refused(lambda: client.execute(token, "SELECT 1"), grpc.StatusCode.PERMISSION_DENIED, "ACCOUNT_TOKEN")
    with grpc.insecure_channel(cluster.address) as channel:
        stub = database_pb2_grpc.DatabaseStub(channel)
        metadata = (("authorization", f"Bearer {token}"),)
        for call in (lambda: stub.Batch(pb.BatchRequest(), metadata=metadata, timeout=30),
                     lambda: stub.Describe(pb.DescribeRequest(), metadata=metadata, timeout=30)):
            refused(call, grpc.StatusCode.PERMISSION_DENIED, "ACCOUNT_TOKEN")


def test_an_account_token_carries_no_database_claims(cluster: LocalCluster) -> None:
    key = Key.generate()
    for extra in ({"db": {"name": "app", "tenant": "a"}}, {"schema": NOTES}, {"scope": "everything"}):
        refused(lambda: _account_call(cluster, "Census", _account_token_with(key, extra)),
                grpc.StatusCode.INVALID_ARGUMENT, "BAD_SCOPE")


def _account_token_with(key: Key, extra: dict) -> str:
    now = int(time.time())
    payload = {"iss": ISSUER, "sub": key.account, "compat": COMPAT_DATES[-1], "iat": now, "exp": now + 600,
               "scope": "account", **extra}
    return jws.sign(payload, key.jose_key, headers={"typ": "JWT", "jwk": key.public_jwk}, algorithm=key.alg)


def test_a_certified_app_key_cannot_sign_an_account_token(cluster: LocalCluster) -> None:
    app = Key.generate().delegate(ttl=3600)
    refused(lambda: _account_call(cluster, "ListDatabases", mint_account(app)),
            grpc.StatusCode.PERMISSION_DENIED, "CERTIFICATE_LIMIT")


def test_one_account_never_sees_another_accounts_databases(cluster: LocalCluster) -> None:
    mine, theirs = Key.generate(), Key.generate()
    _touch(cluster, mine, "app", ["alice", "bob"])
    _touch(cluster, theirs, "app", ["alice", "carol"])
    with Client(cluster.address) as sdk:
        assert [info.tenant for info in sdk.account(mine).databases()] == ["alice", "bob"]
        assert [info.tenant for info in sdk.account(theirs).databases()] == ["alice", "carol"]
        assert sdk.account(mine).census().databases == 2
        assert list(sdk.account(Key.generate()).databases()) == []


def test_a_bad_page_token_or_size_is_refused_with_a_reason(cluster: LocalCluster) -> None:
    with Client(cluster.address) as sdk:
        account = sdk.account(Key.generate())
        with pytest.raises(LootError) as bad_token:
            account.page(page_token="not-a-token")
        with pytest.raises(LootError) as bad_size:
            account.page(page_size=5000)
    assert (bad_token.value.reason, bad_size.value.reason) == ("BAD_PAGE_TOKEN", "BAD_PAGE_SIZE")


def test_loot_databases_and_census_commands(cluster: LocalCluster, tmp_path) -> None:
    key = Key.generate()
    key.save(str(tmp_path / "key.json"))
    _touch(cluster, key, "app", ["alice", "bob"])
    common = ["--router", cluster.address, "--key", str(tmp_path / "key.json")]
    listed = loot("databases", *common, "--json")
    assert listed.returncode == 0, listed.stderr
    assert [(row["name"], row["tenant"]) for row in map(json.loads, listed.stdout.splitlines())] == \
        [("app", "alice"), ("app", "bob")]
    plain = loot("databases", *common, "--tenant-prefix", "b")
    assert plain.stdout.startswith("app\tbob\t") and plain.stdout.count("\n") == 1
    census = loot("census", *common, "--json")
    assert json.loads(census.stdout)["groups"][0]["databases"] == "2"  # int64 is a JSON string
    app_key = tmp_path / "app.json"
    assert loot("keygen", "--delegate", str(tmp_path / "key.json"), "--out", str(app_key)).returncode == 0
    refused_app = loot("census", "--router", cluster.address, "--key", str(app_key))
    assert refused_app.returncode != 0 and "CERTIFICATE_LIMIT" in refused_app.stderr


def _hashes(sdk: Client, key: Key, name: str) -> dict[str, int]:
    return {group.schema_hash: group.databases for group in sdk.account(key).census(name).groups}


def test_a_rollout_converges_every_database_canary_first_and_a_rerun_finds_nothing_to_do(cluster) -> None:
    key = Key.generate()
    tenants = [f"t{i:03}" for i in range(40)]
    _touch(cluster, key, "app", tenants)
    _touch(cluster, key, "other", ["x"])
    with Client(cluster.address) as sdk:
        steps = list(sdk.account(key).rollout("app", NOTES_V2, canary=3, concurrency=2))
        assert [step.phase for step in steps[:5]] == ["canary", "canary", "canary", "canary", "rest"]
        assert steps[-1].phase == "done" and steps[-1].converged == 40 and steps[-1].total == 40
        assert sorted(step.tenant for step in steps if step.tenant) == tenants
        assert _hashes(sdk, key, "app") == {digest(NOTES_V2): 40}
        assert _hashes(sdk, key, "other") == {digest(NOTES): 1}  # another name is left alone
        again = list(sdk.account(key).rollout("app", NOTES_V2))
        assert (again[-1].phase, again[-1].already, again[-1].converged) == ("done", 40, 0)
    with RawClient(cluster.address) as client:  # converged as a request would: the new column is there
        client.execute(mint(key, "app", "t007"), "INSERT INTO notes (n, extra) VALUES (1, 'x')")


def test_a_refused_schema_stops_the_rollout_at_the_canary(cluster) -> None:
    key = Key.generate()
    _touch(cluster, key, "app", [f"t{i}" for i in range(10)])
    retyped = open_table("CREATE TABLE notes (n TEXT)", "notes")  # another column type: refused
    with Client(cluster.address) as sdk:
        steps = list(sdk.account(key).rollout("app", retyped, canary=1, concurrency=1))
        assert steps[-1].phase == "refused" and steps[-1].refusal_reason == "SCHEMA_CHANGE_REFUSED"
        assert steps[-1].tenant.startswith("t") and steps[-1].converged == 0
        assert "rest" not in {step.phase for step in steps}
        assert _hashes(sdk, key, "app") == {digest(NOTES): 10}


def test_a_rollout_stopped_halfway_resumes_and_converges_each_database_once(cluster) -> None:
    key = Key.generate()
    tenants = [f"t{i:03}" for i in range(30)]
    _touch(cluster, key, "app", tenants)
    with Client(cluster.address) as sdk:
        first = sdk.account(key).rollout("app", NOTES_V2, concurrency=1)
        seen = [next(first) for _ in range(6)]  # the phase messages and a few databases
        first.close()  # stops: no database is begun after it
        assert seen[-1].converged >= 4
        again = list(sdk.account(key).rollout("app", NOTES_V2))
        assert again[-1].phase == "done" and again[-1].already + again[-1].converged == 30
        assert again[-1].already >= seen[-1].converged
        assert _hashes(sdk, key, "app") == {digest(NOTES_V2): 30}
    with RawClient(cluster.address) as client:  # each database's history holds the claim once
        for tenant in tenants:
            changes = client.execute(mint(key, "app", tenant, schema=NOTES_V2), "SELECT 1").schema_changes
            assert list(changes) == [], tenant


def test_loot_rollout_prints_progress_and_names_a_refusing_tenant(cluster: LocalCluster, tmp_path) -> None:
    key = Key.generate()
    key.save(str(tmp_path / "key.json"))
    _touch(cluster, key, "app", ["alice", "bob"])
    common = ["--router", cluster.address, "--key", str(tmp_path / "key.json"), "--db", "app"]
    done = loot("rollout", *common, "--schema", NOTES_V2)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "done: 2/2 on the claim (0 already)"
    refused_run = loot("rollout", *common, "--schema", open_table("CREATE TABLE notes (n TEXT)", "notes"))
    assert refused_run.returncode != 0 and "SCHEMA_CHANGE_REFUSED" in refused_run.stderr
    assert "alice" in refused_run.stderr or "bob" in refused_run.stderr


def _tenants(sdk: Client, key: Key, name: str) -> list[str]:
    return [info.tenant for info in sdk.account(key).databases(name)]


def test_destroying_a_list_destroys_exactly_the_listed_databases(cluster: LocalCluster) -> None:
    key, stranger = Key.generate(), Key.generate()
    _touch(cluster, key, "doomed", ["a", "b", "c"])
    _touch(cluster, key, "kept", ["a"])
    _touch(cluster, stranger, "doomed", ["a"])
    with Client(cluster.address) as sdk:
        answer = sdk.account(key).destroy("doomed", ["c", "a", "zz"], "destroy 3 databases of doomed")
        assert (list(answer.destroyed), list(answer.missing)) == (["c", "a"], ["zz"])
        assert _tenants(sdk, key, "doomed") == ["b"]
        assert _tenants(sdk, key, "kept") == ["a"] and _tenants(sdk, stranger, "doomed") == ["a"]
        again = sdk.account(key).destroy("doomed", ["a"], "destroy 1 databases of doomed")
        assert (list(again.destroyed), list(again.missing)) == ([], ["a"])  # never created to be destroyed
        assert _tenants(sdk, key, "doomed") == ["b"]


def test_destroying_a_list_must_be_explicit_and_confirmed(cluster: LocalCluster) -> None:
    key = Key.generate()
    _touch(cluster, key, "precious", ["a", "b"])
    with Client(cluster.address) as sdk:
        account = sdk.account(key)
        for confirm in ("", "destroy 1 databases of precious", "yes"):
            with pytest.raises(LootError) as unconfirmed:
                account.destroy("precious", ["a", "b"], confirm)
            assert unconfirmed.value.reason == "NOT_CONFIRMED"
        for name, tenants in (("precious", []), ("", ["a"]), ("precious", ["a", "a"]), ("precious", [""])):
            with pytest.raises(LootError) as vague:
                account.destroy(name, tenants, f"destroy {len(tenants)} databases of {name}")
            assert vague.value.reason == "BAD_DESTROY"
        assert _tenants(sdk, key, "precious") == ["a", "b"]


def test_loot_destroy_command(cluster: LocalCluster, tmp_path) -> None:
    key = Key.generate()
    key.save(str(tmp_path / "key.json"))
    _touch(cluster, key, "cli-doomed", ["a", "b"])
    common = ["--router", cluster.address, "--key", str(tmp_path / "key.json"), "--db", "cli-doomed"]
    unconfirmed = loot("destroy", *common, "a")
    assert unconfirmed.returncode != 0 and "destroy 1 databases of cli-doomed" in unconfirmed.stderr
    done = loot("destroy", *common, "a", "x", "--confirm", "destroy 2 databases of cli-doomed")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["destroyed\tcli-doomed\ta", "missing\tcli-doomed\tx"]
    with Client(cluster.address) as sdk:
        assert _tenants(sdk, key, "cli-doomed") == ["b"]
