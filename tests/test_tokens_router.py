"""Hostile tokens through a real router: the right status and reason, no crash, the router keeps serving."""

from __future__ import annotations

import json
from collections.abc import Iterator

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.client import rows
from loot.cli.local_cluster import LocalCluster
from loot.grpc_options import GRPC_OPTIONS
from loot.status import error_info
from loot.tokens import Key, mint
from loot.tokens.verify import MAX_TOKEN_BYTES
from loot.v1 import database_pb2 as pb
from loot.v1 import database_pb2_grpc
from tests import test_tokens_fuzz as fuzz
from tests.conftest import start_cluster
from tests.forge import claims, forge, header, token_of_size
from tests.schemas import open_table
from tests.hostile_tokens import BAD_METADATA, CASES, Case, Keys


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys(Key.generate("ES256"), Key.generate("EdDSA"), Key.generate("ES256"))


@pytest.fixture(scope="module")
def stub(cluster: LocalCluster) -> Iterator[database_pb2_grpc.DatabaseStub]:
    with grpc.insecure_channel(cluster.address, options=GRPC_OPTIONS) as channel:
        yield database_pb2_grpc.DatabaseStub(channel)


def call(stub: database_pb2_grpc.DatabaseStub, metadata, sql: str = "SELECT 1") -> pb.ExecuteResponse:
    return stub.Execute(pb.ExecuteRequest(statement=pb.Statement(sql=sql)), metadata=metadata, timeout=20)


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


def refused(stub, metadata) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as failed:
        call(stub, metadata)
    return failed.value


def still_serving(stub, keys: Keys) -> None:
    assert rows(call(stub, bearer(mint(keys.es256, "app", "still-serving"))).result) == [(1,)]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_hostile_token_through_the_router(stub, keys: Keys, case: Case) -> None:
    error = refused(stub, bearer(case.token(keys)))
    info = error_info(error)
    assert (error.code().name, info.domain, info.reason) == (case.code, "loot", case.reason)
    assert error.details()
    still_serving(stub, keys)


@pytest.mark.parametrize("metadata, reason", [case[1:] for case in BAD_METADATA], ids=[case[0] for case in BAD_METADATA])
def test_bad_authorization_metadata(stub, keys: Keys, metadata, reason: str) -> None:
    error = refused(stub, metadata)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED and error_info(error).reason == reason
    still_serving(stub, keys)


def test_a_1_mib_token_is_refused_by_the_transport(stub, keys: Keys) -> None:
    # Beyond the servers' metadata limit gRPC itself refuses the call, before any Loot code (or memory) is spent.
    error = refused(stub, bearer(mint(keys.es256, "app", "x", pad="x" * (1 << 20))))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    still_serving(stub, keys)


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_a_64_kib_token_reaches_its_database(stub, alg: str) -> None:
    key = Key.generate(alg)
    token = token_of_size(key, MAX_TOKEN_BYTES)
    assert len(token) > MAX_TOKEN_BYTES - 4
    assert rows(call(stub, bearer(token), "SELECT 'big'").result) == [("big",)]


def test_eddsa_and_es256_accounts_are_separate_databases(stub, keys: Keys) -> None:
    schema = open_table("CREATE TABLE t (who TEXT)", "t")
    for key in (keys.es256, keys.eddsa):
        call(stub, bearer(mint(key, "app", "same", schema=schema)), f"INSERT INTO t VALUES ('{key.alg}')")
    for key in (keys.es256, keys.eddsa):
        assert rows(call(stub, bearer(mint(key, "app", "same", schema=schema)), "SELECT who FROM t").result) == [(key.alg,)]


def test_claims_at_the_limits_reach_claim(stub, keys: Keys) -> None:
    # 32 levels in all (the limit), a number no int64 holds, and a dotted name that no nested member shadows.
    deep = json.loads("[" * 30 + '"bottom"' + "]" * 30)
    payload = claims(keys.es256, deep=deep, big=10**400, **{"user.id": "dotted"}, team={"id": "nested"})
    token = forge(header(keys.es256), payload, keys.es256)
    got = rows(call(stub, bearer(token), "SELECT claim('big'), claim('user.id'), claim('team.id'), claim('deep')").result)
    assert got == [(str(10**400), "dotted", "nested", json.dumps(deep, separators=(",", ":")))]


@pytest.mark.cluster
def test_the_router_setting_bounds_token_lifetime(tmp_path) -> None:
    key = Key.generate()
    cluster = start_cluster(tmp_path / "cluster", shards=1, env={"LOOT_MAX_TOKEN_LIFETIME": "3600"})
    try:
        with grpc.insecure_channel(cluster.address, options=GRPC_OPTIONS) as channel:
            stub = database_pb2_grpc.DatabaseStub(channel)
            assert rows(call(stub, bearer(mint(key, "app", "hour", ttl=3600))).result) == [(1,)]
            info = error_info(refused(stub, bearer(mint(key, "app", "day", ttl=86_400))))
            assert (info.reason, info.metadata["limit"]) == ("TOKEN_LIFETIME_TOO_LONG", "3600")
            app = key.delegate(ttl=86_400)  # a certificate for a day bounds its tokens by the router's hour too
            assert rows(call(stub, bearer(mint(app, "app", "hour", ttl=3600))).result) == [(1,)]
            info = error_info(refused(stub, bearer(mint(app, "app", "two-hours", ttl=7200))))
            assert (info.reason, info.metadata["limit"]) == ("TOKEN_LIFETIME_TOO_LONG", "3600")
    finally:
        cluster.stop()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["x", "exp", "nbf", "iat", "user", "db", "user.id"]), fuzz.raw_numbers | fuzz.raw_nesting,
       fuzz.json_values)
def test_signed_odd_claims_never_crash_router_or_shard(stub, keys: Keys, claim: str, raw: str, value) -> None:
    # Whatever a key holder signs, the answer is a value or a refusal with a reason: never INTERNAL or UNKNOWN.
    for payload in (json.dumps(claims(keys.es256, **{claim: "RAW"})).replace('"RAW"', raw),
                    json.dumps(claims(keys.es256, **{"user": value, claim: value}))):
        token = forge(header(keys.es256), payload.encode(), keys.es256)
        try:
            call(stub, bearer(token), "SELECT claim('x'), claim('user'), claim('user.id')")
        except grpc.RpcError as error:
            info = error_info(error)
            assert error.code().name in ("UNAUTHENTICATED", "INVALID_ARGUMENT") and info.reason, error.details()
