"""A throwaway PostgreSQL cluster (Debian's package) in a temporary directory, on a
free loopback port, run as the `postgres` system user when we are root (initdb
refuses root). Default durability settings: fsync and synchronous_commit on."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.system import ensure_tools, free_port, tool

SYSTEM_USER = "postgres"


@dataclass(frozen=True)
class Postgres:
    port: int
    data: Path

    def dsn(self, database: str = "postgres", user: str = "postgres") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    @property
    def pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])


@contextlib.contextmanager
def running_postgres() -> Iterator[Postgres]:
    ensure_tools("initdb", "pg_ctl")
    root = Path(tempfile.mkdtemp(prefix="loot-bench-pg-"))
    data, port = root / "data", free_port()
    owner = _system_user() if os.geteuid() == 0 else None
    if owner is not None:
        os.chown(root, owner.pw_uid, owner.pw_gid)
    try:
        _as(owner, [tool("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"])
        options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={root} -c max_connections=300"
        _as(owner, [tool("pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"])
        try:
            yield Postgres(port, data)
        finally:
            _as(owner, [tool("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _system_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:  # the postgresql package creates it; a bare machine may lack it
        subprocess.run(["useradd", "--system", "--no-create-home", SYSTEM_USER], check=True)
        return pwd.getpwnam(SYSTEM_USER)


def _as(owner: pwd.struct_passwd | None, argv: list[str]) -> None:
    prefix = ["runuser", "-u", owner.pw_name, "--"] if owner is not None else []
    subprocess.run([*prefix, *argv], check=True, stdout=subprocess.DEVNULL, cwd="/")
