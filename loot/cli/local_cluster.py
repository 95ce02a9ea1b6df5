"""A cluster of plain processes on loopback: what `loot up` runs and the tests drive.

Layout of the data directory (reused on restart):
    DIR/cluster-secret      the generated cluster secret (mode 0600)
    DIR/membership.json     with `membership_file=True`: the epoch and shards every process reloads
    DIR/shard-0/ ...        one directory of SQLite files per shard
    DIR/up.pid, DIR/scale-*.json   how `loot scale` asks a running `loot up` to change its shards
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from loot.internal.v1 import shard_pb2, shard_pb2_grpc
from loot.membership import Membership, format_members, parse_membership, write_membership
from loot.secret import SECRET_HEADER, new_secret
from loot.http.flags import parse_http
from loot.serving import parse_listening, parse_metrics

Sink = Callable[[str, str], None]  # (process name, output line)
SUPERVISOR_PID = "LOOT_SUPERVISOR_PID"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
SCALE_TIMEOUT = 600.0
Progress = Callable[[int, dict[str, shard_pb2.HandoffStatus | None]], None]  # (epoch, each shard's status)


def shard_names(count: int) -> list[str]:
    return [f"shard-{i}" for i in range(count)]


def load_or_create_secret(data: Path) -> str:
    path = data / "cluster-secret"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(new_secret())
    return path.read_text().strip()


@dataclass
class Child:
    """One server process; `address` is set once it prints its listening line."""

    name: str
    argv: list[str]
    env: dict[str, str]
    sink: Sink
    process: subprocess.Popen | None = None
    address: str | None = None
    metrics: str | None = None  # host:port of its metrics endpoint, when it serves one
    http: str | None = None  # the URL of its HTTP port, when it serves one
    last_line: str = ""
    _ready: threading.Event = field(default_factory=threading.Event)
    _pumping: threading.Thread | None = None

    def start(self) -> None:
        self.address, self.last_line = None, ""
        self._ready.clear()
        # Its own process group, so the terminal's Ctrl-C reaches only the supervisor, which stops
        # children in order. No preexec_fn: it forces a plain fork, whose atfork handlers let gRPC
        # start a poller in the child that dies (SIGABRT) when the child closes its descriptors.
        self.process = subprocess.Popen(
            self.argv, env={**self.env, SUPERVISOR_PID: str(os.getpid())}, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1, process_group=0,
        )
        self._pumping = threading.Thread(target=self._pump, args=(self.process,), daemon=True)
        self._pumping.start()

    def wait_ready(self, timeout: float = START_TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self.process.poll() is not None:
                self._pumping.join(5)  # its last words, usually why it could not start
                said = f": {self.last_line}" if self.last_line else ""
                raise RuntimeError(f"{self.name} exited with status {self.process.returncode} while starting{said}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start within {timeout:.0f}s")
        return self.address

    def _pump(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            line = line.rstrip("\n")
            self.last_line = line
            self.metrics = parse_metrics(line) or self.metrics
            self.http = parse_http(line) or self.http
            self.sink(self.name, line)
            listening = parse_listening(line)
            if listening and self.address is None:
                self.address = listening[2]
                self._ready.set()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            self.process.send_signal(sig)

    def wait(self, timeout: float) -> None:
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class LocalCluster:
    def __init__(self, data: Path, *, port: int = 7070, shards: int = 2, sink: Sink | None = None,
                 env: dict[str, str] | None = None, membership_file: bool = False, http_port: int | None = None):
        self.data = data
        self.http_port = http_port  # the router's HTTP port (0 = any free one); None = none
        self.data.mkdir(parents=True, exist_ok=True)
        self.port = port
        self.names = shard_names(shards)
        self.sink = sink or (lambda name, line: print(f"{name:>8} | {line}", flush=True))
        self.env = {**os.environ, **(env or {}), "LOOT_CLUSTER_SECRET": load_or_create_secret(data),
                    "PYTHONUNBUFFERED": "1"}
        self.membership = data / "membership.json" if membership_file else None
        self.epoch = 0
        if self.membership and self.membership.exists():  # scaled before: keep its shards and epoch
            existing = parse_membership(self.membership.read_text())
            self.epoch, self.names = existing.epoch, list(existing.shards)
        self.shards = {name: self._shard(name) for name in self.names}
        self.router: Child | None = None

    def _shard(self, name: str) -> Child:
        members = ["--membership", str(self.membership)] if self.membership else ["--shards", ",".join(self.names)]
        argv = [sys.executable, "-m", "loot", "shard", "--name", name, *members,
                "--data", str(self.data / name), "--port", "0"]
        return Child(name, argv, self.env, self.sink)

    def start(self) -> str:
        """Start every shard, then the router; return the router's address."""
        if self.membership:  # shards need only the names; the addresses follow once they listen
            write_membership(self.membership, Membership(self.epoch, dict.fromkeys(self.names, "")))
        for shard in self.shards.values():
            shard.start()
        members = {name: shard.wait_ready() for name, shard in self.shards.items()}
        if self.membership:
            write_membership(self.membership, Membership(self.epoch, members))
            members_flags = ["--membership", str(self.membership)]
        else:
            members_flags = ["--shards", format_members(members)]
        argv = [sys.executable, "-m", "loot", "router", *members_flags, "--port", str(self.port)]
        if self.http_port is not None:
            argv += ["--http-port", str(self.http_port)]
        self.router = Child("router", argv, self.env, self.sink)
        self.router.start()
        return self.router.wait_ready()

    def restart_shard(self, name: str) -> str:
        """Start a stopped shard again on its old port, so the router finds it."""
        self.restart(name)
        return self.shards[name].wait_ready()

    def restart(self, name: str) -> None:
        """Start a stopped shard or router again on the port it last listened on, which the other
        processes and clients know it by, without waiting for it to listen."""
        child = self.router if self.router is not None and name == self.router.name else self.shards[name]
        if child.address is not None:  # else it died while starting again: its port is pinned already
            _pin(child.argv, "--port", child.address.rsplit(":", 1)[1])
        if child.metrics is not None:
            _pin(child.argv, "--metrics-port", child.metrics.rsplit(":", 1)[1])
        if child.http is not None:
            _pin(child.argv, "--http-port", child.http.rsplit(":", 1)[1])
        child.start()

    def add_shard(self, name: str) -> str:
        """Start one more shard process (membership file only); it serves nothing of its own
        until `publish_membership` names it."""
        self.shards[name] = self._shard(name)
        self.shards[name].start()
        return self.shards[name].wait_ready()

    def publish_membership(self, names: list[str]) -> Membership:
        """Write the next epoch's membership file: these shards, at their current addresses."""
        self.epoch += 1
        self.names = list(names)
        membership = Membership(self.epoch, {name: self.shards[name].address for name in names})
        write_membership(self.membership, membership)
        return membership

    def scale(self, count: int, progress: Progress | None = None, timeout: float = SCALE_TIMEOUT) -> Membership:
        """Run `count` shards: start the new ones, publish the next epoch, wait until every database
        has moved to its new owner, then stop the shards no longer named (docs/rebalancing.md)."""
        names, drained = shard_names(count), [name for name in self.shards if name not in shard_names(count)]
        if names == self.names and not drained:
            return Membership(self.epoch, {name: self.shards[name].address for name in names})  # nothing to change
        for name in names:
            if name not in self.shards:
                self.add_shard(name)
        membership = self.publish_membership(names)
        for child in self.children():  # reload now rather than at the next poll
            child.signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while not self._settled(membership, progress):
            if time.monotonic() > deadline:
                raise RuntimeError(f"epoch {membership.epoch} did not settle within {timeout:.0f}s")
            time.sleep(0.2)
        for name in drained:
            shard = self.shards.pop(name)
            shard.signal(signal.SIGTERM)
            shard.wait(STOP_TIMEOUT)
        return membership

    def _settled(self, membership: Membership, progress: Progress | None) -> bool:
        statuses = {name: self.handoff_status(name) for name in membership.shards}
        if progress is not None:
            progress(membership.epoch, statuses)
        return all(status is not None and status.epoch == membership.epoch and status.settled
                   for status in statuses.values())

    def handoff_status(self, name: str) -> shard_pb2.HandoffStatus | None:
        """The shard's handoff progress; None while it does not answer."""
        metadata = [(SECRET_HEADER, self.env["LOOT_CLUSTER_SECRET"])]
        with grpc.insecure_channel(self.shards[name].address) as channel:
            try:
                return shard_pb2_grpc.HandoffStub(channel).Status(shard_pb2.StatusRequest(), metadata=metadata,
                                                                  timeout=5)
            except grpc.RpcError:
                return None

    @property
    def address(self) -> str:
        return self.router.address

    @property
    def http(self) -> str | None:
        """The router's HTTP URL, when it serves one (`http_port`)."""
        return self.router.http

    def children(self) -> list[Child]:
        return [*self.shards.values(), *([self.router] if self.router else [])]

    def stop(self) -> None:
        """SIGTERM everyone (router first, so it stops taking requests), then wait."""
        for child in reversed(self.children()):
            child.signal(signal.SIGTERM)
        for child in self.children():
            if child.process is not None:
                child.wait(STOP_TIMEOUT)


def _pin(argv: list[str], flag: str, value: str) -> None:
    """Set `flag`'s value in `argv`, adding the flag if it is not there."""
    if flag in argv:
        argv[argv.index(flag) + 1] = value
    else:
        argv += [flag, value]


def exit_with_supervisor() -> None:
    """Called by a server at start: if a LocalCluster started it, get SIGTERM when that
    supervisor dies (even by SIGKILL), so no server outlives `loot up` or a test run."""
    supervisor = os.environ.get(SUPERVISOR_PID)
    if not supervisor:
        return
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != int(supervisor):  # it died before we asked
        raise SystemExit("loot: the supervisor exited; not starting")
