"""How `loot scale` asks a running `loot up` for another number of shards, through its data directory.

`loot up` owns its processes, so it does the scaling itself (LocalCluster.scale):
    DIR/up.pid              written by `loot up` while it runs
    DIR/scale-request.json  {"id": ..., "shards": N}, written by `loot scale`, which then sends SIGUSR1
    DIR/scale-status.json   {"id", "epoch", "shards": {name: progress}, "done", "error"}, rewritten by
                            `loot up` as the databases move; `loot scale` prints it until done
"""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

from loot.internal.v1 import shard_pb2
from loot.json_files import read_json, write_json

PID, REQUEST, STATUS = "up.pid", "scale-request.json", "scale-status.json"
SIGNAL = signal.SIGUSR1


def running_up(data: Path) -> int | None:
    """The pid of the `loot up` serving `data`, if one runs."""
    try:
        pid = int((data / PID).read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def mark_running(data: Path) -> None:
    (data / PID).write_text(str(os.getpid()))


def mark_stopped(data: Path) -> None:
    (data / PID).unlink(missing_ok=True)


def ask(data: Path, shards: int) -> str:
    """Ask the running `loot up` for `shards` shards; return the request's id. RuntimeError if none runs."""
    pid = running_up(data)
    if pid is None:
        raise RuntimeError(f"no `loot up` is running on {data}")
    request = uuid.uuid4().hex
    write_json(data / REQUEST, {"id": request, "shards": shards})
    os.kill(pid, SIGNAL)
    return request


def take(data: Path) -> tuple[str, int] | None:
    request = read_json(data / REQUEST)
    (data / REQUEST).unlink(missing_ok=True)
    if not request or not isinstance(request.get("shards"), int):
        return None
    return request["id"], request["shards"]


def report(data: Path, request: str, epoch: int, statuses: dict[str, shard_pb2.HandoffStatus | None],
           done: bool = False, error: str | None = None) -> None:
    shards = {name: None if status is None else {
        "epoch": status.epoch, "settled": status.settled, "to_pull": status.to_pull, "pulled": status.pulled,
        "handed_off": status.handed_off, "failed": status.failed} for name, status in statuses.items()}
    write_json(data / STATUS, {"id": request, "epoch": epoch, "shards": shards, "done": done, "error": error})


def status(data: Path, request: str) -> dict | None:
    """The latest report on `request`; None before the first."""
    document = read_json(data / STATUS)
    return document if document and document.get("id") == request else None
