"""Applying the token's declarative schema claim to a database (docs/schema.md).

`apply` moves the live database to the schema the claim describes: the claim
is built in a pristine in-memory database (validate.py, shared by every
database given the same claim: pristine.py), both are read through SQLite's
PRAGMAs (inspect.py), compared (plan.py), and the steps run in one transaction. A claim this database has already seen is a no-op
(history.py), and an unchanged claim costs a dictionary lookup.
"""

from __future__ import annotations

import apsw
import grpc

from loot.status import Fault
from loot.shard.schema import history
from loot.shard.schema.inspect import Catalog
from loot.shard.schema.plan import Plan, plan
from loot.shard.schema.pristine import claimed
from loot.shard.schema.claim_text import is_blank
from loot.shard.sql_errors import fault_from_sqlite, sqlite_message

__all__ = ["apply", "known_current", "unchanged"]


def unchanged(conn: apsw.Connection, claim: str) -> bool:
    """Whether applying `claim` is known to change nothing on this connection: the one place that decides."""
    # No statements (blank, or only comments) is no schema, never an empty one.
    return not claim or history.known_unchanged(conn, claim) or is_blank(claim)


def known_current(conn: apsw.Connection, claim: str, digest: str, schema_version: int) -> None:
    """Tell the fast path that `claim` (whose digest is `digest`) is current at `schema_version`,
    as in a database copied from a file the claim was just applied to; its history says so too."""
    history.remember(conn, claim, digest, schema_version)


def apply(conn: apsw.Connection, claim: str) -> list[str]:
    """Move the database to the schema `claim` describes; say what changed."""
    if unchanged(conn, claim):
        return []
    try:
        conn.execute("BEGIN IMMEDIATE")
        changes, seen, verdict = _apply_in_transaction(conn, claim)
        conn.execute("COMMIT")
    except BaseException as error:
        if not conn.get_autocommit():
            conn.execute("ROLLBACK")
        if isinstance(error, apsw.Error):  # interrupted, disk full, I/O: the usual status for each
            raise fault_from_sqlite(error) from error
        raise
    history.remember(conn, claim, seen.hash, verdict)
    return changes


def _apply_in_transaction(conn: apsw.Connection, claim: str) -> tuple[list[str], history.Seen, int]:
    seen = history.look_up(conn, claim)
    if seen.verdict is not None:
        return [], seen, seen.verdict
    with claimed(claim, seen.hash) as wanted:
        steps = plan(Catalog(conn), wanted)
    if steps.refusals:
        raise _refused(steps)
    _run(conn, steps)
    return steps.changes, seen, history.record(conn, seen)


def _run(conn: apsw.Connection, steps: Plan) -> None:
    for step in steps.steps:
        try:
            conn.execute(step.sql, step.params)
        except apsw.ConstraintError as error:
            raise Fault(grpc.StatusCode.FAILED_PRECONDITION, "SCHEMA_CONSTRAINT_VIOLATION",
                        f"{step.subject}: {sqlite_message(error)}; nothing of the schema was applied", object=step.subject)
        except apsw.SQLError as error:
            raise Fault(grpc.StatusCode.FAILED_PRECONDITION, "SCHEMA_NOT_APPLICABLE",
                        f"{step.subject}: {sqlite_message(error)}; nothing of the schema was applied", object=step.subject)


def _refused(steps: Plan) -> Fault:
    subject, reason = steps.refusals[0]
    said = "; ".join(f"{subject}: {reason}" for subject, reason in steps.refusals)
    return Fault(grpc.StatusCode.FAILED_PRECONDITION, "SCHEMA_CHANGE_REFUSED",
                 f"schema change refused, nothing applied: {said}", object=subject, refusal=reason)
