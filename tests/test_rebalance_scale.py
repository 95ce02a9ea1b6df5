"""`loot scale` against a real `loot up`: new shard processes start, databases move, drained ones stop."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.client import Client, rows
from loot.ids import database_id
from loot.cli.local_cluster import shard_names
from loot.ring import Ring
from loot.tokens import Key, mint
from tests.schemas import open_table
from tests.test_up import children_of, start_up

pytestmark = pytest.mark.cluster  # runs `loot up` and `loot scale`

SCHEMA = open_table("CREATE TABLE notes (body TEXT)", "notes")


def scale(data: Path, shards: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "loot", "scale", "--data", str(data), "--shards", str(shards),
                           "--timeout", "120"], capture_output=True, text=True, timeout=180)


def live_owners(data: Path, db: str) -> list[str]:
    return sorted(path.parent.parent.parent.name for path in data.glob(f"shard-*/??/??/{db}.sqlite"))


def test_scale_moves_databases_between_processes_of_a_running_up(tmp_path: Path) -> None:
    key, tenants = Key.generate(), [f"t{i}" for i in range(60)]
    process, address, lines = start_up(tmp_path)
    # Keep reading its output (the shards' logs pass through it): a full pipe would block `loot up`.
    threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True).start()
    try:
        with Client(address) as client:
            for tenant in tenants:
                client.execute(mint(key, "app", tenant, schema=SCHEMA), "INSERT INTO notes VALUES (?)", [tenant])
        for count in (3, 2):
            done = scale(tmp_path, count)
            assert done.returncode == 0, done.stderr
            assert f"done: {count} shard(s) at membership epoch" in done.stdout
            assert "settled" in done.stdout
            assert len(children_of(process.pid)) == count + 1, "the router and exactly the named shards"
            ring = Ring(shard_names(count))
            for tenant in tenants:
                db = database_id(key.account, "app", tenant)
                assert live_owners(tmp_path, db) == [ring.owner(db)], tenant
            with Client(address) as client:
                for tenant in tenants:
                    result = client.execute(mint(key, "app", tenant), "SELECT body FROM notes").result
                    assert rows(result) == [(tenant,)]
        assert not [line for line in lines if line.startswith("loot: shard-")], "a drained shard is not restarted"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0


def test_scale_needs_a_running_up(tmp_path: Path) -> None:
    refused = scale(tmp_path, 3)
    assert refused.returncode != 0 and "no `loot up` is running" in refused.stderr
