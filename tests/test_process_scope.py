"""The `cluster` mark (tests/process_scope.py) checked on small suites of its own, run by pytester."""

from __future__ import annotations

import pytest

PLUGIN = ("-p", "tests.process_scope")

SUITE = """
import subprocess, sys
import pytest

@pytest.fixture
def cluster():
    yield "a cluster"

@pytest.fixture
def client(cluster):
    yield "a client of " + cluster

def test_unit():
    pass

def test_on_a_cluster(cluster):
    pass

def test_on_a_fixture_built_on_a_cluster(client):
    pass

@pytest.mark.cluster
def test_marked_by_hand():
    pass
"""

SPAWNING = """
import subprocess, sys
import pytest

def test_unmarked_starts_a_process():
    subprocess.run([sys.executable, "-c", "pass"], check=True)

@pytest.mark.cluster
def test_marked_starts_a_process():
    subprocess.run([sys.executable, "-c", "pass"], check=True)
"""


def test_tests_on_cluster_fixtures_are_marked_and_left_out_of_the_fast_loop(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    fast = pytester.inline_run(*PLUGIN, "-m", "not cluster", "--collect-only")
    assert [item.name for item in fast.getcalls("pytest_collection_finish")[0].session.items] == ["test_unit"]
    slow = pytester.inline_run(*PLUGIN, "-m", "cluster", "--collect-only")
    assert sorted(item.name for item in slow.getcalls("pytest_collection_finish")[0].session.items) == [
        "test_marked_by_hand", "test_on_a_cluster", "test_on_a_fixture_built_on_a_cluster"]


@pytest.mark.cluster  # its small suite starts processes
def test_an_unmarked_test_that_starts_a_process_fails_and_says_why(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_spawning=SPAWNING)
    result = pytester.runpytest_inprocess(*PLUGIN)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*_ test_unmarked_starts_a_process _*", "*not marked `cluster` but started a process*"])
