"""Delegated signing keys through a real router (docs/tokens.md, "Delegated keys"): an account's root key
certifies an app key, whose tokens reach the root account's databases within the certificate's limits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from jose import jws

from loot.cli.local_cluster import LocalCluster
from loot.status import Fault
from loot.tokens import Key, mint, verify
from loot.tokens.certificates import TYPE
from loot.tokens.jwk import thumbprint
from loot.tokens.verify import verify as verify_without_certificates
from tests.client import Client, rows
from tests.conftest import refused, start_cluster
from tests.schemas import open_table
from tests.test_accounts_allowlist import wait_for, write_accounts

DAY = 86400
NOTES = open_table("CREATE TABLE notes (body TEXT)", "notes")


def certificate(signer: Key, payload: dict[str, Any], **header: Any) -> str:
    """A certificate with exactly this payload (and extra header members), signed by `signer`."""
    return jws.sign(payload, signer.jose_key, headers={"typ": TYPE, "jwk": signer.public_jwk, **header},
                    algorithm=signer.alg)


def payload_for(root: Key, app: Key, **members: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": root.account, "cnf": {"jkt": app.account}, "iat": now, "exp": now + DAY, **members}


def app_token(app: Key, cert: str, account: str, name: str = "app", tenant: str = "t", **claims: Any) -> str:
    """A token signed by `app`, carrying `cert`, acting for `account`."""
    now = int(time.time())
    payload = {"iss": "https://self-issued.me", "sub": account, "compat": "2025-08-01", "iat": now,
               "exp": now + 600, "db": {"name": name, "tenant": tenant}, **claims}
    return jws.sign(payload, app.jose_key, headers={"typ": "JWT", "jwk": app.public_jwk, "cert": cert},
                    algorithm=app.alg)


@pytest.fixture(scope="module")
def root() -> Key:
    return Key.generate()


def test_an_app_key_reaches_the_root_accounts_databases(client: Client, root: Key) -> None:
    app = root.delegate(ttl=DAY, alg="EdDSA", prefixes=["shared"])
    assert app.account == root.account and app.app.account != root.account
    client.execute(mint(app, "shared", "t1", schema=NOTES), "INSERT INTO notes VALUES ('from the app key')")
    assert rows(client.execute(mint(root, "shared", "t1"), "SELECT body FROM notes").result) == [("from the app key",)]
    provisioned = app.provision("user-1", NOTES, name="shared")
    assert provisioned.database.account == root.account
    client.execute(provisioned.token, "INSERT INTO notes VALUES ('provisioned')")
    claims = verify(mint(app, "shared", "t1", ttl=10 * DAY), max_lifetime=10 * DAY)
    assert claims.delegate == app.app.account and claims.expires_at == app.expires_at, "it expires with its certificate"


def test_a_certificate_signed_by_another_accounts_key_is_refused(client: Client, root: Key) -> None:
    attacker, app = Key.generate(), Key.generate()
    forged = certificate(attacker, payload_for(root, app))  # claims root's account, signed by the attacker
    refused(lambda: client.execute(app_token(app, forged, root.account), "SELECT 1"),
            grpc.StatusCode.UNAUTHENTICATED, "BAD_CERTIFICATE")
    own = certificate(attacker, payload_for(attacker, app))  # the attacker's own account: not root's
    refused(lambda: client.execute(app_token(app, own, root.account), "SELECT 1"),
            grpc.StatusCode.UNAUTHENTICATED, "SUB_MISMATCH")


def test_a_certificate_for_another_key_is_refused(client: Client, root: Key) -> None:
    stolen = root.delegate(ttl=DAY)
    thief = Key.generate()
    refused(lambda: client.execute(app_token(thief, stolen.certificate, root.account), "SELECT 1"),
            grpc.StatusCode.UNAUTHENTICATED, "CERTIFICATE_KEY_MISMATCH")


@pytest.mark.parametrize("members, reason", [
    ({"exp": int(time.time()) - 3600}, "CERTIFICATE_EXPIRED"),
    ({"nbf": int(time.time()) + 3600}, "CERTIFICATE_NOT_YET_VALID"),
    ({"exp": None}, "BAD_CERTIFICATE"),
    ({"names": "app"}, "BAD_CERTIFICATE"),
    ({"readonly": "yes"}, "BAD_CERTIFICATE"),
    ({"quota": 5}, "BAD_CERTIFICATE"),  # a limit this router does not know is never ignored
], ids=["expired", "not-yet-valid", "no-exp", "names-not-a-list", "readonly-not-bool", "unknown-member"])
def test_a_certificate_out_of_time_or_malformed_is_refused(client: Client, root: Key, members, reason: str) -> None:
    app = Key.generate()
    payload = {k: v for k, v in payload_for(root, app, **members).items() if v is not None}
    refused(lambda: client.execute(app_token(app, certificate(root, payload), root.account), "SELECT 1"),
            grpc.StatusCode.UNAUTHENTICATED, reason)


@pytest.mark.parametrize("exp, reason", [(None, "MISSING_EXP"), (2 * DAY, "TOKEN_LIFETIME_TOO_LONG")],
                         ids=["no-exp", "over-the-router-maximum"])
def test_a_certified_token_expires_within_the_routers_maximum_like_any_token(client: Client, root: Key, exp,
                                                                               reason: str) -> None:
    """A certificate valid for days does not let its app key's tokens live past the router's 24 h."""
    app = Key.generate()
    cert = certificate(root, payload_for(root, app, exp=int(time.time()) + 3 * DAY))
    token_exp = None if exp is None else int(time.time()) + exp
    refused(lambda: client.execute(app_token(app, cert, root.account, exp=token_exp), "SELECT 1"),
            grpc.StatusCode.UNAUTHENTICATED, reason)


def test_a_certificate_chain_of_two_levels_is_refused(client: Client, root: Key) -> None:
    middle = root.delegate(ttl=DAY)
    leaf = Key.generate()
    chained = certificate(middle.app, payload_for(root, leaf), cert=middle.certificate)
    refused(lambda: client.execute(app_token(leaf, chained, root.account), "SELECT 1"),
            grpc.StatusCode.UNAUTHENTICATED, "CERTIFICATE_CHAIN")
    with pytest.raises(ValueError):  # nor does the SDK make one
        middle.app.delegated(leaf, chained)


def test_a_token_beyond_its_certificates_names_is_refused(client: Client, root: Key) -> None:
    app = root.delegate(ttl=DAY, names=["exact"], prefixes=["pre-"])
    for name in ("exact", "pre-x"):
        assert rows(client.execute(mint(app, name, "t"), "SELECT 1").result) == [(1,)]
    for name in ("exactly", "other", "pre"):
        info = refused(lambda: client.execute(mint(app, name, "t"), "SELECT 1"),
                       grpc.StatusCode.PERMISSION_DENIED, "CERTIFICATE_LIMIT")
        assert info.metadata["limit"] == "names"


def test_a_readonly_certificate_allows_no_write(client: Client, root: Key) -> None:
    client.execute(mint(root, "reports", "t", schema=NOTES), "INSERT INTO notes VALUES ('kept')")
    app = root.delegate(ttl=DAY, readonly=True)
    for token in (mint(app, "reports", "t"), mint(app, "reports", "t", readonly=True, schema=NOTES)):
        info = refused(lambda: client.execute(token, "INSERT INTO notes VALUES ('no')"),
                       grpc.StatusCode.PERMISSION_DENIED, "CERTIFICATE_LIMIT")
        assert info.metadata["limit"] == "readonly"
    reader = mint(app, "reports", "t", readonly=True)
    refused(lambda: client.execute(reader, "INSERT INTO notes VALUES ('no')"), grpc.StatusCode.PERMISSION_DENIED,
            "READONLY")
    assert rows(client.execute(reader, "SELECT body FROM notes").result) == [("kept",)]


@pytest.mark.parametrize("claim, value", [("before", "SELECT 1"), ("after", "SELECT 1"),
                                          ("instead", "SELECT 1"), ("destroy", True)])
def test_privileged_claims_need_a_certificate_that_allows_them(client: Client, root: Key, claim: str, value) -> None:
    plain = root.delegate(ttl=DAY)
    info = refused(lambda: client.execute(mint(plain, "privileged", "t", **{claim: value}), "SELECT 1"),
                   grpc.StatusCode.PERMISSION_DENIED, "CERTIFICATE_LIMIT")
    assert info.metadata["limit"] == "privileged"
    allowed = root.delegate(ttl=DAY, privileged=True)
    client.execute(mint(allowed, "privileged", claim, **{claim: value}), "SELECT 1")


# --- revocation, on a router of its own -------------------------------------------------------

@pytest.fixture
def revoking(tmp_path: Path, root: Key) -> Iterator[tuple[LocalCluster, Path]]:
    revoked = tmp_path / "revoked.txt"
    revoked.write_text("# no key revoked yet\n")
    cluster = start_cluster(tmp_path / "cluster", shards=1, env={
        "LOOT_ACCOUNTS": root.account, "LOOT_REVOKED_KEYS_FILE": str(revoked), "LOOT_ACCOUNTS_POLL": "0"})
    yield cluster, revoked
    cluster.stop()


@pytest.mark.cluster  # its fixture starts a router of its own
def test_a_revoked_app_key_is_refused_from_its_next_call_and_its_account_is_not(revoking, root: Key) -> None:
    cluster, revoked = revoking
    app, successor = root.delegate(ttl=DAY), root.delegate(ttl=DAY)
    token = mint(app, "app", "t", schema=NOTES)
    with Client(cluster.address) as client:
        client.execute(token, "INSERT INTO notes VALUES ('before the revocation')")  # verified, and cached
        before = len(cluster.sink.lines)
        write_accounts(revoked, app.app)
        cluster.router.signal(signal.SIGHUP)
        wait_for(lambda: any("revoked keys: 1 listed" in line for line in cluster.sink.lines[before:]),
                 "the router to reload the revoked keys")
        info = refused(lambda: client.execute(token, "SELECT 1"), grpc.StatusCode.UNAUTHENTICATED, "KEY_REVOKED")
        assert info.metadata["key"] == app.app.account
        assert rows(client.execute(mint(successor, "app", "t"), "SELECT body FROM notes").result) == \
            [("before the revocation",)], "the account and its data stay: only the key went"


# --- the command line -------------------------------------------------------------------------

def test_keygen_delegate_makes_a_certified_key_in_one_call(tmp_path: Path, client: Client) -> None:
    def loot(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "loot", *argv], capture_output=True, text=True, cwd=tmp_path,
                              timeout=60, env={**os.environ})

    assert loot("keygen", "--out", "root.json").returncode == 0
    made = loot("keygen", "--delegate", "root.json", "--out", "app.json", "--cert-ttl", "12h",
                "--cert-db-prefix", "cli-", "--cert-readonly")
    root = Key.load(tmp_path / "root.json")
    app = Key.load(tmp_path / "app.json")
    assert made.returncode == 0 and f"for account {root.account}" in made.stdout, made.stderr
    assert app.account == root.account and app.limits.prefixes == ("cli-",) and app.limits.readonly
    assert app.limits.expires_at - time.time() <= 12 * 3600
    assert (tmp_path / "app.json").stat().st_mode & 0o777 == 0o600
    token = loot("token", "--key", "app.json", "--db", "cli-x", "--tenant", "t", "--readonly").stdout.strip()
    assert rows(client.execute(token, "SELECT 1").result) == [(1,)]
    again = loot("keygen", "--delegate", "app.json", "--out", "leaf.json")
    assert again.returncode != 0 and "one level" in again.stderr
    limits_alone = loot("keygen", "--cert-readonly", "--out", "plain.json")
    assert limits_alone.returncode != 0 and "--delegate" in limits_alone.stderr
    assert not (tmp_path / "plain.json").exists()
    assert json.loads((tmp_path / "app.json").read_text())["cert"] == app.certificate
    assert thumbprint(app.public_jwk) == app.app.account


def test_a_router_that_predates_delegation_reads_no_app_key_as_an_account(root: Key) -> None:
    """The plain check (what routers did before certificates) refuses a certified token: `sub` is the root's."""
    with pytest.raises(Fault) as refused_token:
        verify_without_certificates(mint(root.delegate(ttl=DAY), "app", "t"))
    assert refused_token.value.reason == "SUB_MISMATCH"


@pytest.mark.parametrize("limits", [{"names": ["x" * 300]}, {"prefixes": [""]}, {"names": ["a"] * 300}])
def test_the_sdk_never_signs_a_certificate_a_router_would_refuse(root: Key, limits) -> None:
    with pytest.raises(ValueError, match="names|prefixes"):
        root.delegate(ttl=DAY, **limits)
