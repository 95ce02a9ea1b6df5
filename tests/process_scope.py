"""Tests sorted by scope: the `cluster` mark is on every test that starts processes.

`pytest -m "not cluster"` is then the fast loop: unit tests only, no router, shard or other process.
A test is marked when it uses a fixture that starts a cluster (`cluster`, `own_cluster`, or any fixture
built on them, such as `client`), or by hand (`pytestmark = pytest.mark.cluster` where a module's own
fixtures or test bodies start processes). Every unmarked test is watched through Python's audit events
(no patching): one that starts a process anyway fails and names it, so the split cannot drift.
"""

from __future__ import annotations

import sys
from collections.abc import Generator

import pytest

MARK = "cluster"
# Fixtures that start router and shard processes; `item.fixturenames` holds every fixture a test
# needs, through other fixtures too, so one built on these is covered.
CLUSTER_FIXTURES = frozenset({"cluster", "own_cluster"})
# Audit events raised when Python starts a process (subprocess, asyncio's subprocesses, os.*).
SPAWN_EVENTS = frozenset({"subprocess.Popen", "os.posix_spawn", "os.fork", "os.forkpty", "os.spawn", "os.system"})


class Spawns:
    """Processes started since the last `take()`, as seen by an audit hook."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.installed = False

    def __call__(self, event: str, args: tuple) -> None:
        if event in SPAWN_EVENTS:
            self.seen.append(f"{event} {args[:2]!r}"[:200])

    def install(self) -> None:
        """Audit hooks cannot be removed, so the hook is added once per interpreter."""
        if not self.installed:
            sys.addaudithook(self)
            self.installed = True

    def take(self) -> list[str]:
        seen, self.seen = self.seen, []
        return seen


SPAWNS = Spawns()


def pytest_configure(config: pytest.Config) -> None:
    SPAWNS.install()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if CLUSTER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(MARK)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    SPAWNS.take()  # what earlier tests' teardowns started is theirs
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    result = yield
    started = SPAWNS.take()
    if started and item.get_closest_marker(MARK) is None:
        pytest.fail(f"this test is not marked `{MARK}` but started a process: {started[0]} (mark it, "
                    f"or its module with `pytestmark = pytest.mark.{MARK}`, see tests/process_scope.py)",
                    pytrace=False)
    return result
