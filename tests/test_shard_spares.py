"""Spare template copies (loot/shard/spares.py): each is its template whole, goes to one
database only, never to another schema's, and a crash's half-made one is never served."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import apsw

from loot.ids import database_id
from loot.shard import backup
from loot.shard.spares import Spares
from loot.shard.storage import SPARE_COPIES, Storage
from loot.shard.templates import Template

A = "CREATE TABLE a (x)"
B = "CREATE TABLE b (y)"


def _filled(spares: Spares, template: Template, count: int) -> None:
    spares.take(template)  # asks for copies
    deadline = time.monotonic() + 30
    while spares.ready(template) < count:
        assert time.monotonic() < deadline, "spare copies were not made"
        time.sleep(0.01)


def test_each_spare_is_its_template_whole_and_goes_to_one_taker(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "shard")
    spares, template = Spares(tmp_path / "spares", power_safe=True, depth=8), storage.templates.get(A)
    _filled(spares, template, 8)
    with ThreadPoolExecutor(8) as pool:
        taken = [copy for copy in pool.map(lambda _: spares.take(template), range(32)) if copy is not None]
    assert len(taken) >= 8 and len(set(taken)) == len(taken), "a copy was handed out twice"
    assert all(copy.read_bytes() == template.image for copy in taken)


def test_spares_are_made_again_once_half_of_them_are_taken(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "shard")
    spares, template = Spares(tmp_path / "spares", power_safe=False, depth=8), storage.templates.get(A)
    _filled(spares, template, 8)
    taken = [spares.take(template) for _ in range(4)]
    assert None not in taken
    deadline = time.monotonic() + 30
    while spares.ready(template) < 8:
        assert time.monotonic() < deadline, "the taken half was not made again"
        time.sleep(0.01)


def test_a_spare_is_never_given_for_another_schema(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "shard")
    spares = Spares(tmp_path / "spares", power_safe=False, depth=4, templates=1)
    a, b = storage.templates.get(A), storage.templates.get(B)
    _filled(spares, a, 4)
    assert spares.take(b) is None, "b has no copies yet; a's are not b's"
    assert not list((tmp_path / "spares").glob(f"{a.key[:16]}.*")), "a forgotten template's copies are deleted"
    _filled(spares, b, 4)
    copy = spares.take(b)
    assert copy is not None and copy.read_bytes() == b.image


def test_a_half_made_spare_left_by_a_crash_is_never_served(tmp_path: Path) -> None:
    storage = Storage(tmp_path, spare_copies=SPARE_COPIES)
    template = storage.templates.get(A)
    half = storage.spares.directory / f"{template.key[:16]}.deadbeef"
    half.write_bytes(template.image[:4096])  # killed while writing a spare
    storage = Storage(tmp_path, spare_copies=SPARE_COPIES)
    assert not half.exists()
    for tenant in range(20):
        database = storage.open(database_id("account", "app", f"t{tenant}"), A)
        assert database.conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert database.conn.execute("SELECT count(*) FROM a").fetchall() == [(0,)]
        database.close()


def test_databases_made_from_spares_are_separate_files(tmp_path: Path) -> None:
    storage = Storage(tmp_path, spare_copies=SPARE_COPIES)
    first = storage.open(database_id("account", "app", "first"), A)
    _filled(storage.spares, storage.templates.get(A), 4)
    first.conn.execute("INSERT INTO a VALUES ('first only')")
    others = [storage.open(database_id("account", "app", f"other{n}"), A) for n in range(6)]
    assert all(other.conn.execute("SELECT * FROM a").fetchall() == [] for other in others)
    assert len({other.path.stat().st_ino for other in [first, *others]}) == 7
    for database in [first, *others]:
        database.close()
    conn = apsw.Connection(str(first.path))
    assert conn.execute("SELECT * FROM a").fetchall() == [("first only",)]


def test_a_creation_whose_spares_vanished_writes_its_own_copy(tmp_path: Path) -> None:
    storage = Storage(tmp_path, spare_copies=SPARE_COPIES)
    template = storage.templates.get(A)
    _filled(storage.spares, template, storage.spares.depth)
    for spare in storage.spares.directory.iterdir():
        spare.unlink()  # as if another process had emptied the scratch directory
    database = storage.open(database_id("account", "app", "after"), A)
    assert database.conn.execute("SELECT count(*) FROM a").fetchall() == [(0,)]


def test_listing_a_live_shard_for_backup_leaves_its_spares_alone(tmp_path: Path) -> None:
    storage = Storage(tmp_path, spare_copies=SPARE_COPIES)
    database = storage.open(database_id("account", "app", "one"), A)
    _filled(storage.spares, storage.templates.get(A), 4)
    spares = sorted(storage.spares.directory.iterdir())
    assert backup.databases(tmp_path) == [database.path]
    assert all(spare.exists() for spare in spares), "listing the databases must not empty the live scratch"


def test_a_new_storage_starts_while_an_old_one_still_makes_spares(tmp_path: Path) -> None:
    """Restarting storage in the same process (as tests and tools do) while the old filler writes."""
    for round in range(5):
        storage = Storage(tmp_path, spare_copies=SPARE_COPIES)
        database = storage.open(database_id("account", "app", f"t{round}"), A)
        assert database.conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        database.close()
