"""Building a claim in a pristine in-memory database, admitting only schema statements.

SQLite's authorizer tells what each statement does (the first action it
reports besides reads and SQLite's own bookkeeping in sqlite_master), so no
regex decides what a statement is. A statement that never reports such an
action (a bare SELECT, or VACUUM, which skips the authorizer) is refused
before it runs.
"""

from __future__ import annotations

import apsw
import grpc

from loot.status import Fault
from loot.shard import system_tables
from loot.shard.access import policy_check
from loot.shard.schema.claim_text import fold, statements, tokens
from loot.shard.sql_errors import sqlite_message

_STATEMENT_KINDS = {apsw.SQLITE_CREATE_TABLE, apsw.SQLITE_CREATE_VTABLE, apsw.SQLITE_CREATE_INDEX,
                    apsw.SQLITE_CREATE_VIEW, apsw.SQLITE_CREATE_TRIGGER, apsw.SQLITE_INSERT}
_NEVER = {apsw.SQLITE_ATTACH, apsw.SQLITE_DETACH, apsw.SQLITE_TRANSACTION, apsw.SQLITE_SAVEPOINT, apsw.SQLITE_PRAGMA}
_BOOKKEEPING = {"sqlite_master", "sqlite_temp_master"}
# Reading does not say what a statement is (a multi-row VALUES is a SELECT before its INSERT).
_READING = {apsw.SQLITE_SELECT, apsw.SQLITE_READ, apsw.SQLITE_FUNCTION}
# A 40-table claim runs about 31 000 SQLite instructions; a runaway one
# (CREATE TABLE AS or INSERT over a recursive CTE) is stopped long before it hurts the shard.
_INSTRUCTIONS_PER_CHECK = 10_000
_INSTRUCTION_BUDGET = 5_000_000
_ONLY = "a schema holds only CREATE TABLE, CREATE VIRTUAL TABLE, CREATE INDEX, CREATE VIEW, CREATE TRIGGER and INSERT INTO _filters/_rules"


class _Gate:
    """Authorizer that classifies a statement by its first action and refuses the foreign ones."""

    def __init__(self) -> None:
        self.kind: int | None = None
        self.refusal: str | None = None

    def reset(self) -> None:
        self.kind, self.refusal = None, None

    def __call__(self, code: int, first: str | None, second: str | None, database: str | None, trigger: str | None) -> int:
        if first in _BOOKKEEPING and code in (apsw.SQLITE_INSERT, apsw.SQLITE_UPDATE, apsw.SQLITE_READ, apsw.SQLITE_DELETE):
            return apsw.SQLITE_OK
        if self.kind is None and code in _READING:
            return apsw.SQLITE_OK
        if self.kind is None:
            self.kind = code
            self.refusal = _statement_refusal(code, first, second)
        elif code in _NEVER or (code == apsw.SQLITE_FUNCTION and second == "load_extension"):
            self.refusal = _ONLY
        return apsw.SQLITE_DENY if self.refusal else apsw.SQLITE_OK


def _statement_refusal(code: int, first: str | None, second: str | None) -> str | None:
    if code not in _STATEMENT_KINDS:
        return _ONLY
    if code == apsw.SQLITE_INSERT:
        return None if fold(first or "") in (system_tables.FILTERS, system_tables.RULES) else \
            "rows may be inserted only into _filters and _rules"
    for name in (first, second if code in (apsw.SQLITE_CREATE_INDEX, apsw.SQLITE_CREATE_TRIGGER) else None):
        if name and system_tables.is_system_table(name):
            return f"{name!r} is a reserved name"
    return None


def build(claim: str) -> apsw.Connection:
    """The database the claim describes, built from nothing; INVALID_ARGUMENT names a bad statement."""
    if "\x00" in claim:  # SQLite reads SQL as a C string
        raise Fault(grpc.StatusCode.INVALID_ARGUMENT, "SCHEMA_INVALID", "the schema claim contains a NUL character")
    pristine = apsw.Connection(":memory:")
    system_tables.create(pristine)
    gate = _Gate()
    pristine.authorizer = gate
    checks = iter(range(_INSTRUCTION_BUDGET // _INSTRUCTIONS_PER_CHECK))
    pristine.set_progress_handler(lambda: next(checks, None) is None, _INSTRUCTIONS_PER_CHECK)
    cursor = pristine.cursor()
    cursor.exec_trace = lambda *_: gate.kind is not None
    for index, statement in enumerate(statements(claim)):
        gate.reset()
        try:
            for _ in cursor.execute(statement):
                pass
        except (apsw.AuthError, apsw.ExecTraceAbort):
            raise _invalid(index, statement, "SCHEMA_STATEMENT_NOT_ALLOWED", gate.refusal or _ONLY)
        except apsw.InterruptError:
            raise _invalid(index, statement, "SCHEMA_TOO_EXPENSIVE",
                           f"the claim took more than {_INSTRUCTION_BUDGET} SQLite instructions to build")
        except apsw.Error as error:
            if gate.kind is None and not tokens(statement)[0].is_word("create", "insert"):
                raise _invalid(index, statement, "SCHEMA_STATEMENT_NOT_ALLOWED", _ONLY)
            raise _invalid(index, statement, "SCHEMA_INVALID", sqlite_message(error))
    pristine.authorizer = None
    pristine.set_progress_handler(None)
    _check_policy(pristine)
    return pristine


def _check_policy(pristine: apsw.Connection) -> None:
    """Refuse the claim if access control could not enforce one of its filter or rule rows on its tables."""
    pristine.create_scalar_function("claim", lambda path: None, 1, deterministic=True)  # as every database has
    found = policy_check.refusals(pristine)
    if found:
        said = "; ".join(f"{row}: {why}" for row, why in found)
        raise Fault(grpc.StatusCode.INVALID_ARGUMENT, "SCHEMA_POLICY_INVALID",
                    f"schema claim refused, nothing applied: {said}", object=found[0][0], refusal=found[0][1])


def _invalid(index: int, statement: str, reason: str, why: str) -> Fault:
    shown = " ".join(statement.split())
    shown = shown if len(shown) <= 200 else shown[:197] + "..."
    return Fault(grpc.StatusCode.INVALID_ARGUMENT, reason, f"schema statement {index + 1} ({shown}): {why}",
                 schema_statement=shown, schema_statement_index=index)
