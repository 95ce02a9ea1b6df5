"""`loot up` as a person runs it: one foreground process, children stopped on Ctrl-C or SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

import grpc

from tests.client import Client, rows
from loot.ids import database_id
from loot.ring import Ring
from loot.tokens import Key, mint
from tests.schemas import open_table

pytestmark = pytest.mark.cluster  # runs `loot up`


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


def test_metrics_flag_prints_each_process_endpoint(tmp_path: Path) -> None:
    process, _, lines = start_up(tmp_path, "--metrics")
    try:
        output = Output(process, lines)
        endpoints = dict(re.findall(r"(\S+) (http://\S+/metrics)", output.wait_for(r"^Metrics: .*").group(0)))
        assert sorted(endpoints) == ["router", "shard-0", "shard-1"]
        for url in endpoints.values():
            assert "loot_" in urllib.request.urlopen(url, timeout=30).read().decode()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0


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


class Output:
    """The rest of a `loot up`'s output, read as it comes (so its pipe never fills)."""

    def __init__(self, process: subprocess.Popen, lines: list[str]):
        self.lines = lines
        self._changed = threading.Condition()
        threading.Thread(target=self._read, args=(process,), daemon=True).start()

    def _read(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()

    def wait_for(self, pattern: str, after: int = 0, timeout: float = 120) -> re.Match:
        """The first line from index `after` on that matches `pattern`."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines[after:]:
                    if found := re.search(pattern, line):
                        return found
                assert self._changed.wait(max(0.0, deadline - time.monotonic())), "".join(self.lines[-40:])


def shard_pid(up: subprocess.Popen, name: str) -> int:
    for pid in children_of(up.pid):
        if f"--name {name} " in Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " "):
            return pid
    raise AssertionError(f"{name} is not running")


def tenant_on(shard: str, key: Key) -> str:
    ring = Ring(["shard-0", "shard-1"])
    return next(f"t{i}" for i in range(1000) if ring.owner(database_id(key.account, "app", f"t{i}")) == shard)


def read_when_back(client: Client, token: str) -> list[tuple]:
    """The notes, once the router reaches the restarted shard (it reconnects within a second or so)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return rows(client.execute(token, "SELECT body FROM notes").result)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.UNAVAILABLE and time.monotonic() < deadline, error
            time.sleep(0.2)


def test_a_crashed_shard_is_restarted_while_the_others_serve_and_repeated_crashes_stop_up(tmp_path: Path) -> None:
    key = Key.generate()
    schema = open_table("CREATE TABLE notes (body TEXT)", "notes")
    crashing, healthy = (mint(key, "app", tenant_on(shard, key), schema=schema) for shard in ("shard-0", "shard-1"))
    process, address, lines = start_up(tmp_path, "--max-restarts", "1", "--restart-window", "3600")
    output = Output(process, lines)
    try:
        with Client(address) as client:
            client.execute(crashing, "INSERT INTO notes VALUES ('before the crash')")
            seen = len(output.lines)
            os.kill(shard_pid(process, "shard-0"), signal.SIGKILL)
            output.wait_for(r"shard-0 exited \(killed by SIGKILL\); restarting it", seen)
            for i in range(3):  # the other shard's tenants are served meanwhile
                client.execute(healthy, "INSERT INTO notes VALUES (?)", [f"while shard-0 was down {i}"])
            assert len(rows(client.execute(healthy, "SELECT body FROM notes").result)) == 3
            output.wait_for(r"shard-0 restarted, listening on", seen)
            assert read_when_back(client, crashing) == [("before the crash",)]
            assert process.poll() is None

            seen, children = len(output.lines), children_of(process.pid)
            os.kill(shard_pid(process, "shard-0"), signal.SIGKILL)  # once more than --max-restarts
            assert process.wait(60) == 1
        output.wait_for(r"loot: shard-0 exited 2 times within 3600s .*; stopping the cluster", seen)
        deadline = time.monotonic() + 30
        while not all(gone(pid) for pid in children):
            assert time.monotonic() < deadline, "children outlived loot up"
            time.sleep(0.1)
    finally:
        process.kill()
        process.wait()
