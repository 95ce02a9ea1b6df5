"""--replica's value: a directory or s3://bucket/prefix, and where one database's replica is."""

from __future__ import annotations

from pathlib import Path

import pytest

from loot.shard.replica_target import parse_target
from loot.shard.replicator import PATTERN, config

ID = "ab" * 32


def test_a_directory_is_made_absolute_and_keyed_by_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    target = parse_target("replica")
    assert target.url == str(tmp_path / "replica")
    assert target.database_url(ID) == f"file://{tmp_path}/replica/ab/ab/{ID}.sqlite"
    assert target.replica_config("catalogs/shard-0") == {"type": "file", "path": f"{tmp_path}/replica/catalogs/shard-0"}


def test_an_s3_target_carries_its_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    target = parse_target("s3://bucket/some/prefix/", "http://127.0.0.1:9000")
    assert target.database_url(ID) == (f"s3://bucket/some/prefix/ab/ab/{ID}.sqlite"
                                       "?endpoint=http%3A%2F%2F127.0.0.1%3A9000")
    assert target.replica_config() == {"url": "s3://bucket/some/prefix", "endpoint": "http://127.0.0.1:9000",
                                       "force-path-style": True}


@pytest.mark.parametrize("value, endpoint", [("", ""), ("ftp://host/x", ""), ("s3://", ""), ("./dir", "http://x")])
def test_what_is_not_a_target_is_refused(value: str, endpoint: str) -> None:
    with pytest.raises(ValueError):
        parse_target(value, endpoint)


def test_a_database_id_is_required() -> None:
    with pytest.raises(ValueError):
        parse_target("/tmp/r").database_url("../../etc")


def test_the_interval_and_retention_reach_litestreams_configuration(tmp_path: Path) -> None:
    written = config(tmp_path, "shard-0", parse_target(str(tmp_path / "replica")), 48, 5)
    databases, catalog = written["dbs"]
    assert written["snapshot"] == {"interval": "48h", "retention": "48h"}
    assert databases["monitor-interval"] == "5000ms" and databases["replica"]["sync-interval"] == "5000ms"
    assert databases["pattern"] == PATTERN and databases["watch"] and databases["recursive"]
    assert catalog["replica"]["path"].endswith("replica/catalogs/shard-0")
