"""Replica targets for the backup tests: a directory, and a local S3 (moto's server, a real process)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from loot.shard.replica_restore import restore
from loot.shard.replica_target import ReplicaTarget, parse_target

S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


@contextmanager
def local_s3() -> Iterator[str]:
    """moto's S3 server on a loopback port it picks itself (no race for a probed port with other
    test runs), with an empty bucket; yields its endpoint URL."""
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    endpoint = _announced(server)
    threading.Thread(target=server.stderr.read, daemon=True).start()  # a full pipe would stall it
    try:
        import boto3  # moto's own dependency: the test extra brings it

        s3 = boto3.client("s3", endpoint_url=endpoint, **_boto_credentials())
        deadline = time.monotonic() + 60
        while True:
            try:
                s3.create_bucket(Bucket="loot-backups")
                break
            except Exception:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        yield endpoint
    finally:
        server.terminate()
        server.wait(15)


def _announced(server: subprocess.Popen) -> str:
    """The URL the server says it runs on (werkzeug: " * Running on http://127.0.0.1:PORT")."""
    for line in server.stderr:
        found = re.search(r"Running on (http://127\.0\.0\.1:\d+)", line)
        if found:
            return found.group(1)
    raise RuntimeError(f"moto's server exited ({server.wait()}) without saying where it runs")


def _boto_credentials() -> dict[str, str]:
    return {"aws_access_key_id": S3_ENV["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": S3_ENV["AWS_SECRET_ACCESS_KEY"],
            "region_name": S3_ENV["AWS_REGION"]}


@contextmanager
def replica_env(kind: str, directory: Path) -> Iterator[tuple[dict[str, str], ReplicaTarget]]:
    """The environment a cluster's shards replicate with, and the target, for `kind` "dir" or "s3"."""
    if kind == "dir":
        yield {"LOOT_REPLICA": str(directory)}, parse_target(str(directory))
        return
    with local_s3() as endpoint:
        env = {**S3_ENV, "LOOT_REPLICA": "s3://loot-backups/cluster", "LOOT_REPLICA_ENDPOINT": endpoint}
        saved = {name: os.environ.get(name) for name in S3_ENV}
        os.environ.update(S3_ENV)  # for this process's own `litestream restore` (replicated())
        try:
            yield env, parse_target(env["LOOT_REPLICA"], endpoint)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def replicated(target: ReplicaTarget, database_id: str, check, patience: float = 120.0) -> None:
    """Wait until the replica's latest state of the database passes `check(path)`."""
    deadline = time.monotonic() + patience
    while True:
        with tempfile.TemporaryDirectory() as scratch:
            out = Path(scratch) / "db.sqlite"
            try:
                restore(target, database_id, out)
                if check(out):
                    return
            except Exception:
                if time.monotonic() > deadline:
                    raise
        if time.monotonic() > deadline:
            raise AssertionError(f"database {database_id} not replicated within {patience:.0f}s")
        time.sleep(0.5)
