"""Interop: tokens signed by node's `jose` and sent by @grpc/grpc-js reach the right database.

The node packages are installed by the test itself (tests/node_packages.py);
without node this test fails, it does not skip.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.client import Client, rows
from loot.cli.local_cluster import LocalCluster
from loot.tokens import Key, mint
from loot.tokens.jwk import thumbprint
from tests.node_packages import installed

INTEROP = Path(__file__).parent / "interop"


@pytest.fixture(scope="session", autouse=True)
def interop_packages() -> None:
    installed(INTEROP)


def run_node(address: str, alg: str, tenant: str, script: str = "call.mjs") -> dict:
    node = shutil.which("node")
    assert node, "node (20+) is needed for the interop test"
    done = subprocess.run([node, str(INTEROP / script), address, alg, tenant],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_node_jose_tokens_over_grpc_js(cluster: LocalCluster, alg: str) -> None:
    tenant = f"node-{alg}"
    result = run_node(cluster.address, alg, tenant)
    assert result["rows"] == [[f"written by node {alg}"]]
    assert result["account"] == thumbprint(result["jwk"]), "RFC 7638 thumbprints differ between jose and Loot"
    assert result["tampered"]["code"] == 16 and "signature" in result["tampered"]["details"]  # UNAUTHENTICATED

    # The same key, used from Python, reaches the database node wrote: same account, same triple.
    key = Key.from_jwk(result["privateJwk"])
    assert (key.alg, key.account) == (alg, result["account"])
    with Client(cluster.address) as client:
        token = mint(key, "interop", tenant)
        assert rows(client.execute(token, "SELECT body FROM notes").result) == [(f"written by node {alg}",)]


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_node_jose_delegated_keys_follow_the_documented_format(cluster: LocalCluster, alg: str) -> None:
    """Node certifies its app key with its root key (docs/tokens.md, "Delegated keys"); the root's account
    owns what the app key wrote, and the certificate's limits hold."""
    tenant = f"node-delegated-{alg}"
    result = run_node(cluster.address, alg, tenant, "delegate.mjs")
    assert result["rows"] == [[f"written by a node {alg} app key"]]
    assert result["outside"]["code"] == 7 and "does not cover" in result["outside"]["details"]  # PERMISSION_DENIED
    root = Key.from_jwk(result["rootPrivateJwk"])
    assert root.account == result["rootAccount"] != result["appAccount"]
    with Client(cluster.address) as client:
        token = mint(root, "interop-delegated", tenant)
        assert rows(client.execute(token, "SELECT body FROM notes").result) == [(f"written by a node {alg} app key",)]
