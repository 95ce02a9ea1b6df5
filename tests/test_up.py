"""`loot up` as a person runs it: one foreground process, children stopped on Ctrl-C or SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loot.client import Client, rows
from loot.tokens import Key, mint
from tests.schemas import open_table


def start_up(data: Path, *flags: str) -> tuple[subprocess.Popen, str, list[str]]:
    process = subprocess.Popen([sys.executable, "-m", "loot", "up", "--port", "0", "--data", str(data), *flags],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    deadline = time.monotonic() + 60
    for line in process.stdout:
        lines.append(line)
        found = re.search(r"Loot is up: router on (\S+),", line)
        if found:
            return process, found[1], lines
        assert time.monotonic() < deadline, "loot up did not come up"
    raise AssertionError("loot up exited:\n" + "".join(lines))


def children_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_up_serves_stops_children_and_reuses_its_data(tmp_path: Path, stop_signal: int) -> None:
    key = Key.generate()
    token = mint(key, "app", "alice", schema=open_table("CREATE TABLE notes (body TEXT)", "notes"))
    for attempt in range(2):  # the second start finds the first one's data and secret
        process, address, _ = start_up(tmp_path)
        children = children_of(process.pid)
        assert len(children) == 3, "one router and two shards"
        with Client(address) as client:
            if attempt == 0:
                client.execute(token, "INSERT INTO notes VALUES ('kept')")
            assert rows(client.execute(token, "SELECT body FROM notes").result) == [("kept",)]
        process.send_signal(stop_signal)
        assert process.wait(30) == 0
        deadline = time.monotonic() + 10
        while not all(gone(pid) for pid in children):
            assert time.monotonic() < deadline, "children outlived loot up"
            time.sleep(0.1)
    assert (tmp_path / "cluster-secret").stat().st_mode & 0o777 == 0o600


def test_a_second_cluster_on_a_port_in_use_fails_naming_it_and_the_first_keeps_serving(tmp_path: Path) -> None:
    key = Key.generate()
    token = mint(key, "app", "alice", schema=open_table("CREATE TABLE notes (body TEXT)", "notes"))
    first, address, _ = start_up(tmp_path / "first")
    try:
        with Client(address) as client:
            client.execute(token, "INSERT INTO notes VALUES ('first')")
        port = address.rsplit(":", 1)[1]
        second = subprocess.run([sys.executable, "-m", "loot", "up", "--port", port, "--data", str(tmp_path / "second")],
                                capture_output=True, text=True, timeout=120)
        assert second.returncode != 0, second.stdout
        assert "Loot is up" not in second.stdout
        assert f"port {port} is already in use" in second.stderr, second.stderr
        assert f"--port" in second.stderr
        with Client(address) as client:  # still the first cluster's data
            assert rows(client.execute(token, "SELECT body FROM notes").result) == [("first",)]
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(30)
