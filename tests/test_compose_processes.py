"""compose.yaml, run for real without Docker: every service started as a process with exactly
the command (image ENTRYPOINT + service command) and environment (image ENV + service
environment) compose gives it. Only what a container network provides is mapped onto
loopback: service hostnames become 127.0.0.1, ports become free ones, volumes directories."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.client import Client, rows
from loot.cli.local_cluster import Child
from loot.secret import new_secret
from loot.tokens import Key, mint
from tests.schemas import open_table
from tests.compose_file import ROOT, environment, load
from tests.conftest import Logs, refused
from tests.test_deploy_files import dockerfile_instructions

pytestmark = pytest.mark.cluster  # runs compose.yaml's services as processes

IMAGE_PORTS = {"LOOT_PORT", "LOOT_METRICS_PORT"}
PORTS = IMAGE_PORTS | {"LOOT_PUBLIC_PORT"}  # and the shards' public port, which compose.yaml sets


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports: all probes stay bound until the last is chosen. (Probed one at a time,
    the kernel may hand out the same port twice, and with SO_REUSEPORT two shards then share it.)"""
    with contextlib.ExitStack() as probes:
        sockets = [probes.enter_context(socket.socket()) for _ in range(count)]
        for probe in sockets:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in sockets]


def image_environment() -> dict[str, str]:
    final = [arguments for op, arguments in dockerfile_instructions() if op == "ENV"][-1]
    return dict(pair.split("=", 1) for pair in final.split())


def image_command(service: dict) -> list[str]:
    """ENTRYPOINT ["loot"] + command, with `loot` run by this virtualenv's interpreter."""
    entrypoint = [op_args for op, op_args in dockerfile_instructions() if op == "ENTRYPOINT"][-1]
    argv = [*json.loads(entrypoint), *service["command"]]
    assert argv[0] == "loot"
    return [sys.executable, "-m", "loot", *argv[1:]]


class ComposeOnLoopback:
    def __init__(self, data: Path):
        self.secret = new_secret()
        self.document = load({"LOOT_CLUSTER_SECRET": self.secret})
        self.services = self.document["services"]
        ports = iter(free_ports(len(self.services) * len(PORTS)))
        self.ports = {name: {variable: next(ports) for variable in PORTS} for name in self.services}
        self.data = data
        self.logs = Logs()
        self.children: dict[str, Child] = {}

    def environment_of(self, name: str) -> dict[str, str]:
        container = {**image_environment(), **environment(self.services[name])}
        assert set(container) >= IMAGE_PORTS | {"LOOT_HOST", "LOOT_DATA"}
        loopback = {**container, "LOOT_HOST": "127.0.0.1",
                    **{k: str(v) for k, v in self.ports[name].items() if k in container}}
        for variable, value in loopback.items():
            loopback[variable] = re.sub(r"\b([\w-]+):7070\b", self._loopback_address, value)
        for mount in self.services[name].get("volumes", []):
            volume, target, *_ = mount.split(":")
            if volume.startswith("./"):  # a host directory: a copy whose addresses are on loopback too
                inside = re.compile(re.escape(target) + r"(?=/|$)")  # /etc/loot, not /etc/loot-accounts
                for variable, value in loopback.items():
                    loopback[variable] = inside.sub(str(self._host_directory(volume)), value)
            else:
                assert target == container["LOOT_DATA"]
                loopback["LOOT_DATA"] = str(self.data / volume)
        return {**os.environ, **loopback}

    def _host_directory(self, volume: str) -> Path:
        copy = self.data / "host" / volume
        if not copy.exists():
            copy.mkdir(parents=True)
            for path in (ROOT / volume).iterdir():
                (copy / path.name).write_text(re.sub(r"\b([\w-]+):7070\b", self._loopback_address, path.read_text()))
        return copy

    def _loopback_address(self, match: re.Match) -> str:
        service = match[1]
        return f"127.0.0.1:{self.ports[service]['LOOT_PORT']}" if service in self.services else match[0]

    def allow(self, *keys: Key) -> None:
        """List these accounts in the router's accounts file (its host directory's copy)."""
        path = Path(self.environment_of("router")["LOOT_ACCOUNTS_FILE"])
        path.write_text(path.read_text() + "".join(f"{key.account}\n" for key in keys))

    def start(self, name: str) -> None:
        child = Child(name, image_command(self.services[name]), self.environment_of(name), self.logs)
        child.start()
        child.wait_ready()
        self.children[name] = child

    def healthcheck(self, name: str) -> subprocess.CompletedProcess:
        test = self.services[name]["healthcheck"]["test"]
        assert test[:2] == ["CMD", "loot"]
        return subprocess.run([sys.executable, "-m", "loot", *test[2:]], env=self.environment_of(name),
                              capture_output=True, text=True, timeout=30)

    def stop(self) -> None:
        for child in reversed(list(self.children.values())):
            child.signal(signal.SIGTERM)
        for child in self.children.values():
            child.wait(15)


@pytest.fixture
def composed(tmp_path: Path) -> Iterator[ComposeOnLoopback]:
    cluster = ComposeOnLoopback(tmp_path)
    yield cluster
    cluster.stop()


def test_compose_services_run_as_given_and_serve_end_to_end(composed: ComposeOnLoopback, key: Key) -> None:
    composed.allow(key)
    order = sorted(composed.services, key=lambda name: bool(composed.services[name].get("depends_on")))
    for name in order:  # dependencies first, as compose does with depends_on: service_healthy
        for dependency in composed.services[name].get("depends_on", {}):
            assert composed.healthcheck(dependency).returncode == 0
        composed.start(name)
    for name in composed.services:
        check = composed.healthcheck(name)
        assert check.returncode == 0 and "SERVING" in check.stdout, (name, check.stderr)

    router = f"127.0.0.1:{composed.ports['router']['LOOT_PORT']}"
    tenants = [f"tenant-{i}" for i in range(24)]
    with Client(router) as client:
        for tenant in tenants:
            client.execute(mint(key, "compose", tenant, schema=open_table("CREATE TABLE t (who TEXT)", "t")),
                           "INSERT INTO t VALUES (?)", [tenant])
        for tenant in tenants:
            assert rows(client.execute(mint(key, "compose", tenant), "SELECT who FROM t").result) == [(tenant,)]
        refused(lambda: client.execute(mint(Key.generate(), "compose", "stranger"), "SELECT 1"),
                grpc.StatusCode.PERMISSION_DENIED, "ACCOUNT_NOT_ALLOWED")

    shards = [name for name in composed.services if composed.services[name]["command"] == ["shard"]]
    for name in shards:  # each shard's public port answers for every tenant: its own, and the others' forwarded
        with Client(f"127.0.0.1:{composed.ports[name]['LOOT_PUBLIC_PORT']}") as client:
            for tenant in tenants[:6]:
                assert rows(client.execute(mint(key, "compose", tenant), "SELECT who FROM t").result) == [(tenant,)]
            refused(lambda: client.execute(mint(Key.generate(), "compose", "stranger"), "SELECT 1"),
                    grpc.StatusCode.PERMISSION_DENIED, "ACCOUNT_NOT_ALLOWED")

    for name in shards:
        volume = composed.services[name]["volumes"][0].split(":")[0]  # the named data volume comes first
        assert list((composed.data / volume).rglob("*.sqlite")), f"{name} stored nothing in its volume"
    json_lines = [line for line in composed.logs.lines if ": {" in line]
    assert json_lines, "the image's LOOT_LOG_FORMAT=json reached the processes"

    composed.stop()
    assert all(child.process.returncode == 0 for child in composed.children.values()), "SIGTERM is a clean stop"
