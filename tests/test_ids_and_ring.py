from loot.ids import database_id, is_database_id
from loot.membership import parse_members
from loot.ring import POINTS, Ring

import pytest


def test_database_id_is_stable_and_length_prefixed() -> None:
    assert database_id("acct", "a", "bc") != database_id("acct", "ab", "c")
    assert database_id("acct", "app", "alice") == database_id("acct", "app", "alice")
    assert database_id("acct", "app", "alice") != database_id("other", "app", "alice")
    assert is_database_id(database_id("acct", "../../etc", "passwd"))


def test_ring_is_over_names_and_spreads() -> None:
    ring = Ring(["shard-0", "shard-1", "shard-2"])
    owners = {ring.owner(database_id("a", "app", str(i))) for i in range(200)}
    assert owners == {"shard-0", "shard-1", "shard-2"}
    assert Ring(["shard-1", "shard-0"]).owner("x" * 64) == Ring(["shard-0", "shard-1"]).owner("x" * 64)


def test_membership_parsing() -> None:
    assert parse_members("shard-0=h:1, shard-1") == {"shard-0": "h:1", "shard-1": ""}
    for bad in ("", "a,a", "=h:1"):
        with pytest.raises(ValueError):
            parse_members(bad)


def test_the_ring_is_the_algorithm_clients_are_told() -> None:
    """loot/ring.py's docstring (and docs/clients.md) describe the placement for other languages: it must hold."""
    import bisect
    import hashlib

    names = ["shard-0", "shard-1", "shard-2", "eu-1"]
    points: dict[int, str] = {}
    for name in sorted(names):
        for w in range(POINTS):
            points[int(hashlib.md5(f"{name}-{w}".encode()).hexdigest(), 16)] = name
    circle = sorted(points)
    ring = Ring(names)
    for i in range(2000):
        database = hashlib.sha256(str(i).encode()).hexdigest()
        at = bisect.bisect_right(circle, int(hashlib.md5(database.encode()).hexdigest(), 16)) % len(circle)
        assert ring.owner(database) == points[circle[at]]
