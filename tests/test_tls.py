"""TLS on every port (docs/operations.md): clients reach the router over TLS; router and shards use mutual TLS."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from loot import Client
from loot.ids import database_id
from loot.membership import format_members
from loot.internal.v1 import shard_pb2, shard_pb2_grpc
from loot.secret import SECRET_HEADER
from loot.tokens import Key, mint
from loot.v1 import database_pb2 as pb
from loot.v1 import database_pb2_grpc
from tests.certs import Authority
from tests.conftest import start_cluster
from tests.schemas import open_table

pytestmark = pytest.mark.cluster  # a TLS cluster from its own fixture


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory):
    directory = tmp_path_factory.mktemp("tls")
    authority = Authority(directory)
    server_cert, server_key = authority.issue("server")
    router_cert, router_key = authority.issue("router")
    env = {"LOOT_TLS_CERT": str(server_cert), "LOOT_TLS_KEY": str(server_key),
           # One environment serves every process here, so the router's public port demands client
           # certificates too (mutual TLS for clients as well); the tests' client presents one.
           "LOOT_SHARD_TLS_CA": str(authority.ca_file), "LOOT_SHARD_TLS_CERT": str(router_cert),
           "LOOT_SHARD_TLS_KEY": str(router_key), "LOOT_TLS_CLIENT_CA": str(authority.ca_file)}
    cluster = start_cluster(directory / "cluster", env=env)
    yield cluster, authority, (router_cert, router_key)
    cluster.stop()


def _credentials(authority: Authority, client: tuple[Path, Path] | None) -> grpc.ChannelCredentials:
    cert, key = client or (None, None)
    return grpc.ssl_channel_credentials(root_certificates=authority.ca_file.read_bytes(),
                                        private_key=key.read_bytes() if key else None,
                                        certificate_chain=cert.read_bytes() if cert else None)


def _execute(address: str, credentials: grpc.ChannelCredentials | None, token: str, sql: str) -> pb.ExecuteResponse:
    channel = grpc.secure_channel(address, credentials) if credentials else grpc.insecure_channel(address)
    with channel:
        stub = database_pb2_grpc.DatabaseStub(channel)
        return stub.Execute(pb.ExecuteRequest(statement=pb.Statement(sql=sql)),
                            metadata=(("authorization", f"Bearer {token}"),), timeout=10)


def test_requests_travel_over_tls_end_to_end(tls_cluster) -> None:
    cluster, authority, client = tls_cluster
    token = mint(Key.generate(), "app", "tls", schema=open_table("CREATE TABLE t (x)", "t"))
    credentials = _credentials(authority, client)
    _execute(cluster.address, credentials, token, "INSERT INTO t VALUES ('over tls')")
    assert _execute(cluster.address, credentials, token, "SELECT x FROM t").result.rows[0].values[0].text == "over tls"


def test_plaintext_and_untrusted_clients_are_refused(tls_cluster, tmp_path: Path) -> None:
    cluster, authority, client = tls_cluster
    token = mint(Key.generate(), "app", "tls", schema=open_table("CREATE TABLE t (x)", "t"))
    with pytest.raises(grpc.RpcError) as plaintext:
        _execute(cluster.address, None, token, "SELECT 1")
    assert plaintext.value.code() == grpc.StatusCode.UNAVAILABLE
    stranger = Authority(tmp_path, "another CA")
    with pytest.raises(grpc.RpcError) as untrusted:
        _execute(cluster.address, _credentials(stranger, stranger.issue("mallory")), token, "SELECT 1")
    assert untrusted.value.code() == grpc.StatusCode.UNAVAILABLE


def test_a_shard_refuses_a_caller_without_a_cluster_certificate(tls_cluster) -> None:
    cluster, authority, _ = tls_cluster
    key = Key.generate()
    context = shard_pb2.Context(database_id=database_id(key.account, "app", "x"), account=key.account, name="app", tenant="x")
    request = shard_pb2.ShardExecuteRequest(context=context, request=pb.ExecuteRequest(statement=pb.Statement(sql="SELECT 1")))
    secret = ((SECRET_HEADER, cluster.env["LOOT_CLUSTER_SECRET"]),)
    with grpc.secure_channel(cluster.shards["shard-0"].address, _credentials(authority, None)) as channel:
        with pytest.raises(grpc.RpcError) as refused:
            shard_pb2_grpc.ShardStub(channel).Execute(request, metadata=secret, timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, "the TLS handshake fails without a client certificate"


def test_the_sdk_speaks_mutual_tls(tls_cluster) -> None:
    cluster, authority, (cert, key_file) = tls_cluster
    with Client(cluster.address, root_certificates=authority.ca_file.read_bytes(),
                private_key=key_file.read_bytes(), certificate_chain=cert.read_bytes()) as client:
        db = client.database("app", tenant="sdk-tls", key=Key.generate(), schema=open_table("CREATE TABLE t (x)", "t"))
        db.execute("INSERT INTO t VALUES (?)", ["sdk over tls"])
        assert db.execute("SELECT x FROM t").scalar() == "sdk over tls"


def test_operator_commands_reach_shards_over_tls(tls_cluster, tmp_path: Path) -> None:
    """`loot export` (as restore and import, loot/cli/shard_calls.py) takes the --shard-tls-* settings a
    router takes: from the environment in a shard's pod. Without them, a clear refusal, not a traceback."""
    cluster, authority, client = tls_cluster
    key = Key.generate()
    token = mint(key, "app", "exported", schema=open_table("CREATE TABLE t (x)", "t"))
    _execute(cluster.address, _credentials(authority, client), token, "INSERT INTO t VALUES ('kept')")
    command = [sys.executable, "-m", "loot", "export", "--account", key.account, "--db", "app", "--tenant", "exported",
               "--shards", format_members({name: shard.address for name, shard in cluster.shards.items()})]
    out = tmp_path / "exported.sqlite"
    done = subprocess.run([*command, "--out", str(out)], env=cluster.env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(out) as conn:
        assert conn.execute("SELECT x FROM t").fetchall() == [("kept",)]
    plaintext = {name: value for name, value in cluster.env.items() if not name.startswith("LOOT_SHARD_TLS")}
    refused = subprocess.run([*command, "--out", str(tmp_path / "not.sqlite")], env=plaintext, capture_output=True,
                             text=True, timeout=300)
    assert refused.returncode == 1 and refused.stderr.startswith("loot: ") and "Traceback" not in refused.stderr
