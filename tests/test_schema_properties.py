"""Random schema evolutions (hypothesis): data is never lost, a second apply is a no-op, refusals change nothing."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loot.status import Fault
from loot.shard import schema
from loot.shard.schema.claim_text import tokens
from tests.schema_invariants import apply_checked, fill, open_database, snapshot

TYPES = ["INTEGER", "TEXT", "REAL", "BLOB", ""]
COLUMN_EXTRAS = ["", " DEFAULT 7", " NOT NULL DEFAULT 'x'", " COLLATE NOCASE", " CHECK (length(c) < 99)", " NOT NULL", " UNIQUE"]
TABLES = ["a", "b", "c"]
COLUMNS = ["c0", "c1", "c2", "c3"]


@st.composite
def claims(draw: st.DrawFn) -> str:
    """One claim: a few tables of a few columns, some indexes, views, a trigger and filters."""
    statements = []
    tables = draw(st.lists(st.sampled_from(TABLES), min_size=1, max_size=3, unique=True))
    for table in tables:
        columns = draw(st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=4, unique=True))
        definitions = ", ".join(f"{column} {draw(st.sampled_from(TYPES))}{draw(st.sampled_from(COLUMN_EXTRAS)).replace('(c)', f'({column})')}"
                                for column in columns)
        statements.append(f"CREATE TABLE {draw(st.sampled_from([table, table.upper(), chr(34) + table + chr(34)]))} "
                          f"(id INTEGER PRIMARY KEY, {definitions});")
        if draw(st.booleans()):
            statements.append(f"CREATE {draw(st.sampled_from(['', 'UNIQUE ']))}INDEX {table}_i ON {table} ({columns[0]});")
        if draw(st.booleans()):
            statements.append(f"CREATE VIEW {table}_v AS SELECT id, {columns[-1]} FROM {table} WHERE id > {draw(st.integers(0, 2))};")
        if draw(st.booleans()):
            statements.append(f"CREATE TRIGGER {table}_t AFTER INSERT ON {table} BEGIN SELECT {draw(st.integers(0, 2))}; END;")
        if draw(st.booleans()):
            statements.append(f"INSERT INTO _filters VALUES ('{table}', 'f', '{draw(st.sampled_from(['true', 'id > 0']))}');")
    return "\n".join(statements)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(claims(), min_size=2, max_size=5))
def test_random_evolutions_keep_every_row(evolution: list[str]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        conn = open_database(Path(directory))
        applied: list[str] = []
        for claim in evolution:
            if claim in applied:
                before = snapshot(conn)
                assert schema.apply(conn, claim) == [] and snapshot(conn) == before, "a seen schema changed something"
                continue
            outcome = apply_checked(conn, claim)
            if not isinstance(outcome, Fault):
                applied.append(claim)
            fill(conn)
        after = snapshot(conn)
        for seen in applied:
            assert schema.apply(conn, seen) == [], "a seen schema changed something"
        assert snapshot(conn) == after
        conn.close()


def test_an_add_only_evolution_is_never_refused(tmp_path: Path) -> None:
    conn = open_database(tmp_path)
    claim = ""
    for step in range(6):
        claim += f"\nCREATE TABLE t{step} (id INTEGER PRIMARY KEY, v TEXT);"
        claim = claim.replace("v TEXT)", f"v TEXT, w{step} INTEGER DEFAULT {step})", 1)
        outcome = apply_checked(conn, claim)
        assert not isinstance(outcome, Fault), outcome
        fill(conn)
    conn.close()


def cosmetic(claim: str, data: st.DataObject) -> str:
    """The same claim with words' case flipped and whitespace or comments between tokens."""
    spaced = []
    for token in tokens(claim):
        text = token.text
        if token.kind == "word" and data.draw(st.booleans()):
            text = text.swapcase()
        spaced.append(text + data.draw(st.sampled_from([" ", "\n  ", " /* note */ ", " -- note\n"])))
    return "".join(spaced)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(claims(), st.data())
def test_cosmetic_rewrites_change_nothing(claim: str, data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as directory:
        conn = open_database(Path(directory))
        schema.apply(conn, claim)
        fill(conn)
        rewritten = cosmetic(claim, data)
        assert rewritten != claim
        assert apply_checked(conn, rewritten) == []
        conn.close()
