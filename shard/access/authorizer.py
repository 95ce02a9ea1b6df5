"""What the request's own SQL may touch, decided by SQLite's authorizer at prepare time.

The TEMP views do the filtering; this is the backstop that keeps SQL from
going around them: no direct read of a filtered `main` table or schema view
(only the views, the triggers, and a write statement's own target may read
them), no virtual tables at all (no trigger can guard them), no writes to
system tables, no writes under `readonly`, and no DDL,
transaction control or pragma changes that could take the TEMP objects away.

Every answer depends on the mode, so whoever changes the mode must call
`attach(conn)` again: setting an authorizer expires every prepared statement, and
SQLite re-prepares (and re-authorizes) them before their next step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import apsw

from shard import system_tables

_WRITES = {apsw.SQLITE_INSERT: "insert", apsw.SQLITE_UPDATE: "update", apsw.SQLITE_DELETE: "delete"}
_SCHEMA_CHANGES = {code for name, code in vars(apsw).items() if isinstance(code, int) and name.startswith((
    "SQLITE_CREATE_", "SQLITE_DROP_"))} | {
    apsw.SQLITE_ALTER_TABLE, apsw.SQLITE_ATTACH, apsw.SQLITE_DETACH, apsw.SQLITE_REINDEX, apsw.SQLITE_ANALYZE}
_TRANSACTIONS = {apsw.SQLITE_TRANSACTION, apsw.SQLITE_SAVEPOINT}
# Built-in virtual tables that read raw pages, so would count (or show) hidden rows.
_PAGE_READERS = frozenset({"dbstat", "sqlite_dbpage"})
# Pragmas whose argument names a thing to describe, never a new setting.
_DESCRIBING = {"table_info", "table_xinfo", "index_info", "index_xinfo", "index_list", "foreign_key_list",
               "table_list", "function_list", "pragma_list", "collation_list", "module_list"}


@dataclass(frozen=True)
class Refusal:
    reason: str
    message: str
    metadata: dict[str, str] = field(default_factory=dict)


_SCHEMA_REFUSAL = Refusal("SCHEMA_CHANGE", "the request's SQL may not change the schema; use the schema claim")


class Authorizer:
    def __init__(self, sandbox: Callable[..., int] | None = None):
        self.sandbox = sandbox
        self.privileged = False
        self.readonly = False
        self.target: str | None = None
        self.filtered: frozenset[str] = frozenset()
        self.virtual: frozenset[str] = frozenset()
        self.readers: frozenset[str] = frozenset()
        self.refusal: Refusal | None = None
        # Whether a statement was prepared (so may sit in the cache) with privilege since the last attach.
        self.authorized_privileged = False

    def attach(self, conn: apsw.Connection) -> None:
        conn.authorizer = self
        self.authorized_privileged = False

    def __call__(self, action: int, first: str | None, second: str | None, database: str | None,
                 accessor: str | None) -> int:
        if self.privileged:
            self.authorized_privileged = True
        else:
            refusal = self._refusal(action, first, second, database, accessor)
            if refusal is not None:
                self.refusal = refusal
                return apsw.SQLITE_DENY
        if self.sandbox is not None:
            return self.sandbox(action, first, second, database, accessor)
        return apsw.SQLITE_OK

    def _refusal(self, action: int, first: str | None, second: str | None, database: str | None,
                 accessor: str | None) -> Refusal | None:
        name = (first or "").lower()
        if action == apsw.SQLITE_READ and name in _PAGE_READERS:
            return Refusal("PAGE_READER", f"{first} reads pages beneath the filters", {"table": first or ""})
        if action in (apsw.SQLITE_READ, *_WRITES) and database == "main" and name in self.virtual:
            return Refusal("VIRTUAL_TABLE", f"virtual table {first} is reachable from privileged SQL only "
                           "(instead, before, after): rules cannot guard it", {"table": first or ""})
        if action == apsw.SQLITE_READ:
            return self._read(first or "", database, accessor)
        if action in _WRITES:
            return self._write(_WRITES[action], first or "", database)
        if action in _SCHEMA_CHANGES:
            return _SCHEMA_REFUSAL
        if action in _TRANSACTIONS:
            return Refusal("TRANSACTION_CONTROL", "each request is one transaction; it may not be controlled from SQL")
        if action == apsw.SQLITE_PRAGMA and second is not None and (first or "").lower() not in _DESCRIBING:
            return Refusal("PRAGMA", f"the request's SQL may not change pragma {first}")
        return None

    def _read(self, table: str, database: str | None, accessor: str | None) -> Refusal | None:
        name = table.lower()
        if database != "main" or name not in self.filtered:
            return None
        if (accessor or "").lower() in self.readers or (accessor is None and name == self.target):
            return None
        return Refusal("FILTERED_TABLE", f"{database}.{table} is read through its filters: name it {table}",
                       {"table": table})

    def _write(self, operation: str, table: str, database: str | None) -> Refusal | None:
        if table.lower().startswith("sqlite_"):
            return _SCHEMA_REFUSAL
        if system_tables.is_system_table(table):
            return Refusal("SYSTEM_TABLE", f"the request's SQL may not write {table}", {"table": table})
        if self.readonly:
            return Refusal("READONLY", f"this token is readonly: its SQL may not {operation} {database}.{table}",
                           {"table": table})
        return None
