"""Handed-off files are kept --keep-handed-off days after they are retired, then deleted."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from loot.ids import database_id
from loot.shard.handoff import files, retention
from loot.shard.storage import Storage
from tests.conftest import start_cluster

DB = database_id("account", "app", "moved")
EIGHT_DAYS = 8 * retention.DAY


def test_retiring_starts_the_files_keeping_time(tmp_path: Path) -> None:
    """A database last written long ago is kept from the moment it is handed off, not from that write."""
    storage = Storage(tmp_path)
    storage.open(DB, "CREATE TABLE t (x)").close()
    long_ago = time.time() - EIGHT_DAYS
    os.utime(storage.path(DB), (long_ago, long_ago))
    Path(f"{storage.path(DB)}-wal").write_bytes(b"")  # an empty WAL retired with it
    before = time.time()
    assert files.retire(storage, DB, epoch=2)
    retired = sorted((tmp_path / files.RETIRED).iterdir())
    assert [path.name for path in retired] == [f"{DB}.epoch-2.sqlite", f"{DB}.epoch-2.sqlite-wal"]
    assert all(path.stat().st_mtime >= before - 1 for path in retired)
    assert retention.sweep(tmp_path / files.RETIRED, 7 * retention.DAY) == []
    assert retention.sweep(tmp_path / files.RETIRED, 7 * retention.DAY, now=before + EIGHT_DAYS) == retired


@pytest.mark.cluster
def test_a_shard_deletes_handed_off_files_older_than_the_setting_when_it_starts(tmp_path: Path) -> None:
    retired = tmp_path / "shard-0" / files.RETIRED
    retired.mkdir(parents=True)
    old = [retired / f"{DB}.epoch-1.sqlite", retired / f"{DB}.epoch-1.sqlite-wal"]
    recent = retired / f"{DB}.epoch-3.sqlite"
    for path in [*old, recent]:
        path.write_bytes(b"")
    for path in old:
        os.utime(path, (time.time() - EIGHT_DAYS,) * 2)
    cluster = start_cluster(tmp_path, shards=1)  # the default keeps 7 days
    try:
        deadline = time.monotonic() + 60
        while any(path.exists() for path in old):
            assert time.monotonic() < deadline, "the shard kept files older than --keep-handed-off"
            time.sleep(0.1)
        assert recent.exists()
    finally:
        cluster.stop()
