"""Fixtures that start real clusters: shard and router processes on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from loot.client import Client
from loot.local_cluster import LocalCluster
from loot.tokens import Key


class Logs:
    """Every line the cluster's processes print, shown when a test fails."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, name: str, line: str) -> None:
        self.lines.append(f"{name}: {line}")


def start_cluster(data: Path, shards: int = 2, env: dict[str, str] | None = None) -> LocalCluster:
    cluster = LocalCluster(data, port=0, shards=shards, sink=Logs(), env=env)
    try:
        cluster.start()
    except Exception as error:
        cluster.stop()
        output = "\n".join(cluster.sink.lines[-100:])
        raise RuntimeError(f"{error}; the cluster's output:\n{output}") from error
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
        for name in ("cluster", "own_cluster"):
            cluster = item.funcargs.get(name) if hasattr(item, "funcargs") else None
            if cluster is not None and isinstance(cluster.sink, Logs):
                report.sections.append((f"{name} output", "\n".join(cluster.sink.lines[-200:])))
