"""The examples in examples/ run against a real cluster and do what they say."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.node_packages import installed

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_per_user_recipe(cluster, tmp_path: Path) -> None:
    server = subprocess.Popen([sys.executable, str(EXAMPLES / "per_user" / "server.py"), "--port", "0",
                               "--router", cluster.address, "--key", str(tmp_path / "app-key.json")],
                              stdout=subprocess.PIPE, text=True)
    try:
        app = server.stdout.readline().split()[-1]
        alice = run("per_user/client.py", "--app", app, "--user", "alice")
        again = run("per_user/client.py", "--app", app, "--user", "alice")
        bob = run("per_user/client.py", "--app", app, "--user", "bob")
    finally:
        server.terminate()
        server.wait(10)
    assert "alice's first todo" in alice and again.count("alice's first todo") == 2, "same user, same database"
    assert "alice" not in bob, "bob has his own database"
    assert "as expected, no DDL" in alice


def test_shared_database_patterns(cluster) -> None:
    out = run("shared_database.py", "--router", cluster.address)
    assert "claim: alice sees [('alice', 'alice only')]" in out
    assert "claim: bob sees [('bob', 'bob only')]" in out
    assert "claim: bob cannot write as alice: rule own_rows on notes" in out
    assert "context: bob sees []" in out
    assert "context: bob's update touched 0 rows" in out
    assert """context: o'brien sees [("o'brien", 'a quote is data')]""" in out, "the user id is a value, not SQL"


def test_agent_uses_tools(cluster) -> None:
    out = run("agent.py", "--router", cluster.address)
    assert "tools: query, insert_tasks, update_tasks, delete_tasks" in out
    assert "[('read the spec', 1), ('write the tests', 0)]" in out


@pytest.fixture(scope="session")
def node_example() -> Path:
    """examples/node, its packages installed (once, tests/node_packages.py)."""
    installed(EXAMPLES / "node")
    return EXAMPLES / "node"


def test_node_client(cluster, node_example: Path) -> None:
    """A non-Python client: node's jose signs, @grpc/grpc-js calls."""
    assert shutil.which("node"), "node is needed for the Node.js example"
    done = subprocess.run(["node", str(node_example / "todos.mjs"), cluster.address],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1 | try Loot from node"
