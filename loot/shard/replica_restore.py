"""One database's replica back into a file: `litestream restore`, latest or as of a time."""

from __future__ import annotations

import subprocess
from datetime import datetime, timezone
from pathlib import Path

import grpc

from loot.status import Fault
from loot.shard.replica_target import ReplicaTarget
from loot.shard.replicator import litestream_binary, litestream_env

RESTORE_TIMEOUT = 3600.0


def rfc3339(timestamp: str) -> str:
    """`timestamp` as Litestream takes it (UTC, Z); INVALID_ARGUMENT unless ISO 8601 with a date and time."""
    try:
        moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        raise Fault(grpc.StatusCode.INVALID_ARGUMENT, "BAD_TIMESTAMP",
                    f"{timestamp!r} is not a time: give ISO 8601, e.g. 2026-01-02T15:04:05Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def restore(target: ReplicaTarget, database_id: str, out: Path, timestamp: str = "") -> None:
    """Write database `database_id`'s replicated state (as of `timestamp`, else the latest) to `out`, which
    must not exist; NOT_FOUND when the replica holds nothing for it (then or ever)."""
    restore_url(target.database_url(database_id), f"database {database_id}", out, timestamp)


def restore_url(url: str, what: str, out: Path, timestamp: str = "") -> None:
    """`restore` of the replica at `url` (`what` it is, for messages)."""
    argv = [litestream_binary(), "restore", "-o", str(out)]
    if timestamp:
        argv += ["-timestamp", rfc3339(timestamp)]
    done = subprocess.run([*argv, url], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          env=litestream_env(), timeout=RESTORE_TIMEOUT)
    if done.returncode != 0:
        said = (done.stderr.strip().splitlines() or ["no reason given"])[-1].removeprefix("Error: ")
        when = f" as of {timestamp}" if timestamp else ""
        if any(words in said for words in _NOTHING_THERE):
            raise Fault(grpc.StatusCode.NOT_FOUND, "NO_REPLICA", f"the replica holds no state of {what}{when}: {said}")
        raise Fault(grpc.StatusCode.UNAVAILABLE, "REPLICA_UNAVAILABLE",
                    f"could not restore {what}{when} from the replica: {said}")


# How `litestream restore` says the replica has nothing to give, as opposed to failing to reach it.
_NOTHING_THERE = ("no matching backup", "does not exist", "no snapshots", "not found")
