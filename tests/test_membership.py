"""Membership as versioned configuration: parsing the file and reloading it in place."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loot.membership import Membership, MembershipSource, parse_epoch, parse_membership, write_membership

TWO = {"shard-0": "127.0.0.1:1", "shard-1": "127.0.0.1:2"}


def test_a_membership_file_parses_to_its_epoch_and_shards() -> None:
    membership = parse_membership(json.dumps({"epoch": 3, "shards": TWO}))
    assert (membership.epoch, membership.shards) == (3, TWO)
    assert membership.ring.names == ("shard-0", "shard-1")


def test_public_addresses_are_optional_and_written_back(tmp_path: Path) -> None:
    public = {"shard-0": "db0.example.com:7080"}
    membership = parse_membership(json.dumps({"epoch": 3, "shards": TWO, "public": public}))
    assert membership.public == public and parse_membership(json.dumps({"epoch": 3, "shards": TWO})).public == {}
    write_membership(tmp_path / "m.json", membership)
    assert parse_membership((tmp_path / "m.json").read_text()) == membership


@pytest.mark.parametrize("text", [
    "not json", "[]", '{"epoch": 1}', '{"epoch": -1, "shards": {"a": ""}}', '{"epoch": true, "shards": {"a": ""}}',
    '{"epoch": 1, "shards": {}}', '{"epoch": 1, "shards": {"a": 7}}', '{"epoch": 1, "shards": {"a": ""}, "x": 1}',
    '{"epoch": 1, "shards": {"a": ""}, "public": {"b": "h:1"}}', '{"epoch": 1, "shards": {"a": ""}, "public": {"a": 1}}',
    '{"epoch": 1, "shards": {"a": ""}, "public": []}',
])
def test_a_bad_membership_file_says_what_is_wrong(text: str) -> None:
    with pytest.raises(ValueError):
        parse_membership(text)


def _source(tmp_path: Path, epoch: int = 1, shards: dict[str, str] = TWO) -> tuple[MembershipSource, Path]:
    path = tmp_path / "membership.json"
    write_membership(path, Membership(epoch, shards))
    return MembershipSource.from_file(path), path


def test_reload_takes_a_newer_epoch_and_tells_listeners_first(tmp_path: Path) -> None:
    source, path = _source(tmp_path)
    seen: list[tuple[int, int]] = []
    source.on_change(lambda new: seen.append((new.epoch, source.current.epoch)))
    assert source.reload() is False  # unchanged file
    write_membership(path, Membership(2, {**TWO, "shard-2": "127.0.0.1:3"}))
    assert source.reload() is True
    assert source.current.epoch == 2 and "shard-2" in source.current.shards
    assert seen == [(2, 1)]  # the listener saw the new membership while the old one still served


@pytest.mark.parametrize("content", ["{broken", json.dumps({"epoch": 0, "shards": {"shard-0": "x:1"}})])
def test_reload_keeps_serving_the_old_membership_on_a_bad_or_older_file(tmp_path: Path, content: str) -> None:
    source, path = _source(tmp_path)
    path.write_text(content)
    assert source.reload() is False
    assert source.current == Membership(1, TWO)


def test_a_listener_can_veto_a_membership(tmp_path: Path) -> None:
    source, path = _source(tmp_path)

    def refuse(_: Membership) -> None:
        raise ValueError("no address")

    source.on_change(refuse)
    write_membership(path, Membership(2, {"shard-0": ""}))
    assert source.reload() is False and source.current.epoch == 1


def test_a_configmap_style_symlink_swap_is_seen(tmp_path: Path) -> None:
    """Kubernetes updates a mounted ConfigMap by pointing a symlink at a new directory."""
    for version, epoch in (("v1", 1), ("v2", 2)):
        (tmp_path / version).mkdir()
        write_membership(tmp_path / version / "membership.json", Membership(epoch, TWO))
    os.symlink("v1", tmp_path / "data")
    source = MembershipSource.from_file(tmp_path / "data" / "membership.json")
    os.symlink("v2", tmp_path / "data.new")
    os.replace(tmp_path / "data.new", tmp_path / "data")
    assert source.reload() is True and source.current.epoch == 2


@pytest.mark.parametrize("text, epoch", [("7", 7), ("", -1), ("-3", -1), ("x", -1), ("1.5", -1)])
def test_an_epoch_from_another_node_is_read_strictly(text: str, epoch: int) -> None:
    assert parse_epoch(text) == epoch


@pytest.mark.cluster  # starts `loot router` / `loot shard`
@pytest.mark.parametrize("role, flags", [("router", ["--shards", "s=127.0.0.1:1", "--membership", "m.json"]),
                                         ("router", []), ("shard", ["--name", "s"])])
def test_a_server_needs_exactly_one_way_to_get_membership(tmp_path: Path, role: str, flags: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("LOOT_SHARDS", "LOOT_MEMBERSHIP")}
    done = subprocess.run([sys.executable, "-m", "loot", role, *flags, "--port", "0"], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path, env={**env, "LOOT_CLUSTER_SECRET": "s" * 32})
    assert done.returncode != 0 and "exactly one of --shards" in done.stderr
