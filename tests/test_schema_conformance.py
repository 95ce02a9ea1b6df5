"""The sqldef peer corpus (tests/conformance/sqldef/README.md) against Loot's schema invariants."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from loot.status import Fault
from loot.shard import schema
from tests.schema_invariants import apply_checked, fill, open_database, snapshot

# The one case whose `desired` loses or rewrites data under docs/schema.md: its renamed column is NOT NULL
# without a default, which SQLite can add only to an empty table. Every other case applies.
REFUSED = {"tests:RenameColumnWithTypeChange"}
CORPUS = Path(__file__).resolve().parent / "conformance" / "sqldef"


def cases() -> list[tuple[str, dict]]:
    return [(f"{path.stem}:{name}", case) for path in sorted(CORPUS.glob("*.yml"))
            for name, case in (yaml.safe_load(path.read_text()) or {}).items()]


def test_the_corpus_is_there() -> None:
    assert len(cases()) == 66


@pytest.mark.parametrize("name, case", cases(), ids=[name for name, _ in cases()])
def test_case_meets_the_invariants(name: str, case: dict, tmp_path: Path) -> None:
    conn = open_database(tmp_path)
    current, desired = case.get("current") or "", case.get("desired") or ""
    if current.strip():
        schema.apply(conn, current)
    fill(conn)
    outcome = apply_checked(conn, desired)
    assert isinstance(outcome, Fault) == (name in REFUSED), outcome
    if isinstance(outcome, Fault):
        return
    after = snapshot(conn)
    assert schema.apply(conn, current) == [], "an older, already-seen schema changed something"
    assert snapshot(conn) == after, "an older schema reverted the newer one"
