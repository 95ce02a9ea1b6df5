"""What the benchmarks need from the machine: Debian tools, free loopback ports, process memory."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

# Debian package per command the benchmarks run.
PACKAGES = {"h2load": "nghttp2-client", "wrk": "wrk", "initdb": "postgresql", "pg_ctl": "postgresql"}
POSTGRES_BIN = Path("/usr/lib/postgresql")


def ensure_tools(*commands: str) -> None:
    """Install the Debian packages providing `commands` if any is missing (we run as root)."""
    missing = sorted({PACKAGES[command] for command in commands if tool(command) is None})
    if not missing:
        return
    print(f"installing {' '.join(missing)} (apt-get)", file=sys.stderr, flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def tool(command: str) -> str | None:
    """Path of `command`, looking in PostgreSQL's versioned bin directory too."""
    found = shutil.which(command)
    if found:
        return found
    candidates = sorted(POSTGRES_BIN.glob(f"*/bin/{command}"))
    return str(candidates[-1]) if candidates else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_bytes(pid: int) -> int:
    """Resident memory of one process (Rss from /proc, includes shared pages)."""
    return _status_kib(pid, "VmRSS:") * 1024


def pss_bytes(pid: int) -> int:
    """Proportional set size: shared pages split among the processes sharing them."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no Pss for process {pid}")


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for process {pid}")


def disk_bytes(path: Path) -> int:
    """Bytes allocated on disk under `path` (like du), not apparent sizes."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used so far (all their threads)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks
