"""Who may use a router: the account allowlist through real processes (docs/operations.md,
"Who may use the cluster"), and the refusal to listen beyond loopback without one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from loot.cli.local_cluster import Child, LocalCluster
from loot.tokens import Key, mint
from tests.client import Client, rows
from tests.conftest import Logs, refused, start_cluster

pytestmark = pytest.mark.cluster  # every test starts a router (with start_cluster or as a child process)
WAIT = 60.0  # generous: the machine is shared


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def write_accounts(path: Path, *keys: Key) -> None:
    """Replace the file at once (as a ConfigMap update does), one thumbprint a line, with a comment."""
    staged = path.with_suffix(".new")
    staged.write_text("# accounts this cluster serves\n" + "".join(f"{key.account}  # a test key\n" for key in keys))
    os.replace(staged, path)


def reloads(cluster: LocalCluster) -> int:
    """The router's reloads (shards' public ports read the same file, and say so too)."""
    return sum(line.startswith("router: ") and "allowed accounts:" in line and "reloaded from" in line
               for line in cluster.sink.lines)


def allow(cluster: LocalCluster, path: Path, *keys: Key) -> None:
    """Rewrite the list, SIGHUP the router, and wait until it says it reloaded."""
    before = reloads(cluster)
    write_accounts(path, *keys)
    cluster.router.signal(signal.SIGHUP)
    wait_for(lambda: reloads(cluster) > before, "the router to reload its accounts file")


@pytest.fixture(scope="module")
def listed() -> Key:
    return Key.generate()


@pytest.fixture(scope="module")
def accounts_file(tmp_path_factory: pytest.TempPathFactory, listed: Key) -> Path:
    path = tmp_path_factory.mktemp("accounts") / "accounts.txt"
    write_accounts(path, listed)
    return path


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory, accounts_file: Path) -> Iterator[LocalCluster]:
    """A cluster whose router serves only the accounts file's accounts; reloads on SIGHUP only."""
    cluster = start_cluster(tmp_path_factory.mktemp("cluster"), shards=1, env={
        "LOOT_ACCOUNTS_FILE": str(accounts_file), "LOOT_ACCOUNTS_POLL": "0", "LOOT_METRICS_PORT": "0"})
    yield cluster
    cluster.stop()


def test_a_token_from_an_unlisted_account_is_refused(guarded: LocalCluster, listed: Key) -> None:
    stranger = Key.generate("EdDSA")
    with Client(guarded.address) as client:
        info = refused(lambda: client.execute(mint(stranger, "app", "t"), "SELECT 1"),
                       grpc.StatusCode.PERMISSION_DENIED, "ACCOUNT_NOT_ALLOWED")
        assert info.metadata["account"] == stranger.account
        assert rows(client.execute(mint(listed, "app", "t"), "SELECT 1").result) == [(1,)]


def test_a_reload_adds_and_removes_accounts_and_the_token_cache_does_not_outlive_it(
        guarded: LocalCluster, accounts_file: Path, listed: Key) -> None:
    newcomer = Key.generate()
    token, newcomer_token = mint(listed, "app", "cached"), mint(newcomer, "app", "cached")
    with Client(guarded.address) as client:
        assert rows(client.execute(token, "SELECT 1").result) == [(1,)]  # verified now, and cached
        refused(lambda: client.execute(newcomer_token, "SELECT 1"), grpc.StatusCode.PERMISSION_DENIED,
                "ACCOUNT_NOT_ALLOWED")
        allow(guarded, accounts_file, newcomer)
        assert rows(client.execute(newcomer_token, "SELECT 1").result) == [(1,)]
        refused(lambda: client.execute(token, "SELECT 1"), grpc.StatusCode.PERMISSION_DENIED, "ACCOUNT_NOT_ALLOWED")
        allow(guarded, accounts_file, listed)


def test_a_bad_accounts_file_is_ignored_and_the_list_kept(guarded: LocalCluster, accounts_file: Path,
                                                          listed: Key) -> None:
    accounts_file.write_text(f"{listed.account}\nnot-a-thumbprint\n")
    before = len(guarded.sink.lines)
    guarded.router.signal(signal.SIGHUP)
    wait_for(lambda: any("not-a-thumbprint" in line for line in guarded.sink.lines[before:]),
             "the router to log the bad line")
    with Client(guarded.address) as client:
        assert rows(client.execute(mint(listed, "app", "t"), "SELECT 1").result) == [(1,)]
    allow(guarded, accounts_file, listed)


def router_metric(cluster: LocalCluster, sample: str) -> float:
    """The value of one sample (`name{labels}`) the router's /metrics shows now."""
    address = next(line.rsplit(" ", 1)[1] for line in cluster.sink.lines if line.startswith("router: ")
                   and " metrics on " in line)
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=30) as response:
        text = response.read().decode()
    return float(next(line.rsplit(" ", 1)[1] for line in text.splitlines() if line.startswith(sample + " ")))


def in_flight(cluster: LocalCluster) -> float:
    return router_metric(cluster, "loot_router_calls_in_flight")


def test_a_reload_that_removes_an_account_lets_its_calls_in_flight_finish_and_refuses_the_next(
        guarded: LocalCluster, accounts_file: Path, listed: Key) -> None:
    token = mint(listed, "app", "in-flight")
    shards = [shard.process.pid for shard in guarded.shards.values()]
    results: list[object] = []
    with Client(guarded.address) as client:
        assert rows(client.execute(token, "SELECT 1").result) == [(1,)]
        for pid in shards:  # the call is admitted and then waits on its shard
            os.kill(pid, signal.SIGSTOP)
        try:
            caller = threading.Thread(target=lambda: results.append(client.execute(token, "SELECT 'finished'", timeout=120)))
            caller.start()
            wait_for(lambda: in_flight(guarded) == 1, "the router to admit the call")
            allow(guarded, accounts_file)  # nobody
            refused(lambda: client.execute(token, "SELECT 'next'"), grpc.StatusCode.PERMISSION_DENIED,
                    "ACCOUNT_NOT_ALLOWED")
        finally:
            for pid in shards:
                os.kill(pid, signal.SIGCONT)
        caller.join(120)
        assert [rows(result.result) for result in results] == [[("finished",)]]
        allow(guarded, accounts_file, listed)


def test_the_accounts_file_is_polled_for_changes(tmp_path: Path) -> None:
    path, key = tmp_path / "accounts.txt", Key.generate()
    path.write_text("# nobody yet\n")
    cluster = start_cluster(tmp_path / "cluster", shards=1,
                            env={"LOOT_ACCOUNTS_FILE": str(path), "LOOT_ACCOUNTS_POLL": "0.1"})
    try:
        with Client(cluster.address) as client:
            token = mint(key, "app", "t")
            refused(lambda: client.execute(token, "SELECT 1"), grpc.StatusCode.PERMISSION_DENIED, "ACCOUNT_NOT_ALLOWED")
            write_accounts(path, key)
            wait_for(lambda: reloads(cluster) > 0, "the router to notice the file changed")
            assert rows(client.execute(token, "SELECT 1").result) == [(1,)]
    finally:
        cluster.stop()


# --- safe by default: starting a router --------------------------------------------------------

def router(*flags: str, env: dict[str, str] | None = None) -> list[str]:
    return [sys.executable, "-m", "loot", "router", "--shards", "shard-0=127.0.0.1:1", "--port", "0", *flags]


def clean_env(**extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("LOOT_")}
    return {**env, "LOOT_CLUSTER_SECRET": "a-test-secret-of-enough-length", **extra}


def start_fails(argv: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "listening on" not in done.stdout, done.stdout
    return done.stderr


def starts(argv: list[str], env: dict[str, str]) -> str:
    child = Child("router", argv, env, Logs())
    child.start()
    try:
        return child.wait_ready()
    finally:
        child.signal(signal.SIGTERM)
        child.wait(15)


@pytest.mark.parametrize("host", ["0.0.0.0", "[::]", "10.1.2.3", "router.example"])
def test_a_router_beyond_loopback_without_an_allowlist_refuses_to_start(host: str) -> None:
    error = start_fails(router("--host", host), clean_env())
    assert "no account allowlist" in error and "--open-accounts" in error and "--accounts-file" in error


def test_a_router_beyond_loopback_starts_with_an_allowlist_or_open_on_purpose(tmp_path: Path) -> None:
    path = tmp_path / "accounts.txt"
    write_accounts(path, Key.generate())
    assert starts(router("--host", "0.0.0.0", "--accounts-file", str(path)), clean_env()).startswith("0.0.0.0:")
    assert starts(router("--host", "0.0.0.0"), clean_env(LOOT_OPEN_ACCOUNTS="true")).startswith("0.0.0.0:")
    assert starts(router("--host", "0.0.0.0"), clean_env(LOOT_ACCOUNTS=Key.generate().account))


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_a_router_on_loopback_is_open_without_a_list(host: str) -> None:
    assert starts(router("--host", host), clean_env())


def test_contradictory_or_bad_account_settings_stop_the_router(tmp_path: Path) -> None:
    path = tmp_path / "accounts.txt"
    path.write_text("# one bad line\nnot-a-thumbprint\n")
    assert "line 2" in start_fails(router("--accounts-file", str(path)), clean_env())
    assert "cannot read" in start_fails(router("--accounts-file", str(tmp_path / "missing")), clean_env())
    write_accounts(path, Key.generate())
    assert "cannot go with" in start_fails(router("--accounts-file", str(path), "--open-accounts"), clean_env())
