"""Fixtures that start real clusters: shard and router processes on loopback."""

from __future__ import annotations

import os

# The tests spawn and restart servers while their own gRPC channels are busy; with fork support on, gRPC's
# poller restarted in the forked child can hit a closed epoll fd and abort it before exec (grpc/grpc#43055).
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2

from tests.client import Client
from loot.cli.local_cluster import LocalCluster
from loot.status import error_info
from loot.tokens import Key

# tests/process_scope.py marks the tests that start processes `cluster` (pytest -m "not cluster" is the
# fast loop); pytester lets tests/test_process_scope.py check that on tests of its own.
pytest_plugins = ("tests.process_scope", "pytester")


class Logs:
    """Every line the cluster's processes print, shown when a test fails."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, name: str, line: str) -> None:
        self.lines.append(f"{name}: {line}")


_started: list[LocalCluster] = []  # clusters started during the running test: their output goes with its failure


def start_cluster(data: Path, shards: int = 2, env: dict[str, str] | None = None,
                  membership_file: bool = False, http_port: int | None = None) -> LocalCluster:
    cluster = LocalCluster(data, port=0, shards=shards, sink=Logs(), env=env, membership_file=membership_file,
                           http_port=http_port)
    try:
        cluster.start()
    except Exception as error:
        cluster.stop()
        output = "\n".join(cluster.sink.lines[-100:])
        raise RuntimeError(f"{error}; the cluster's output:\n{output}") from error
    _started.append(cluster)
    return cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A two-shard cluster shared by a module's tests (they must not kill it)."""
    cluster = start_cluster(tmp_path_factory.mktemp("cluster"))
    yield cluster
    cluster.stop()


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    """A two-shard cluster for one test, which may kill its processes."""
    cluster = start_cluster(tmp_path / "cluster")
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def http_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A one-shard cluster whose router also serves HTTP (docs/http.md) and metrics, shared by a module's tests."""
    cluster = start_cluster(tmp_path_factory.mktemp("http"), shards=1, http_port=0, env={"LOOT_METRICS_PORT": "0"})
    yield cluster
    cluster.stop()


def refused(call, code: grpc.StatusCode, reason: str | None = None) -> error_details_pb2.ErrorInfo:
    """Run `call`, expect it to fail with `code` (and `reason`); return its ErrorInfo."""
    with pytest.raises(grpc.RpcError) as failed:
        call()
    info = error_info(failed.value)
    assert failed.value.code() == code, failed.value.details()
    assert info is not None and info.domain == "loot"
    if reason is not None:
        assert info.reason == reason, failed.value.details()
    return info


@pytest.fixture(scope="module")
def client(cluster: LocalCluster) -> Iterator[Client]:
    with Client(cluster.address) as client:
        yield client


@pytest.fixture(scope="session")
def key() -> Key:
    return Key.generate()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        arguments = getattr(item, "funcargs", {})
        named = {name: arguments.get(name) for name in ("cluster", "own_cluster")}
        started = {f"cluster {index} started by the test": cluster for index, cluster in enumerate(_started, 1)
                   if all(cluster is not other for other in named.values())}
        for name, cluster in {**named, **started}.items():
            if cluster is not None and isinstance(cluster.sink, Logs):
                report.sections.append((f"{name} output", "\n".join(cluster.sink.lines[-200:])))
    if report.when == "teardown":
        _started.clear()
