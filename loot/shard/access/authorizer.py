"""What SQL may touch, decided by SQLite's authorizer at prepare time: the
connection's only authorizer, for the request's own SQL and privileged SQL alike.

No SQL, privileged or not, may ATTACH/DETACH (VACUUM INTO included), load an
extension or change how the file is stored (journal mode, synchronous, ...);
privileged SQL may control transactions only where the engine allows it (its
own BEGIN/COMMIT, the schema phase). The rest restricts the request's own SQL.

The TEMP views do the filtering; this is the backstop that keeps SQL from
going around them: no direct read of a filtered `main` table or schema view
(only the views, the triggers, and a write statement's own target may read
them), no virtual tables at all (no trigger can guard them), no writes to
system tables, no writes under `readonly`, and no DDL,
transaction control, or pragmas beyond read-only introspection.

Every answer depends on the mode, so whoever changes the mode must call
`attach(conn)` again: setting an authorizer expires every prepared statement, and
SQLite re-prepares (and re-authorizes) them before their next step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import apsw

from loot.shard import system_tables
from loot.shard.access.rewrite import FAST_VIEW
from loot.shard.sql_text import fold

_WRITES = {apsw.SQLITE_INSERT: "insert", apsw.SQLITE_UPDATE: "update", apsw.SQLITE_DELETE: "delete"}
_SCHEMA_CHANGES = {code for name, code in vars(apsw).items() if isinstance(code, int) and name.startswith((
    "SQLITE_CREATE_", "SQLITE_DROP_"))} | {apsw.SQLITE_ALTER_TABLE, apsw.SQLITE_REINDEX, apsw.SQLITE_ANALYZE}
_TRANSACTIONS = {apsw.SQLITE_TRANSACTION, apsw.SQLITE_SAVEPOINT}
# Answered first: they come for every column a statement reads.
_ALWAYS_ALLOWED = {apsw.SQLITE_SELECT, apsw.SQLITE_RECURSIVE}
# Built-in virtual tables that read raw pages, so would count (or show) hidden rows.
_PAGE_READERS = frozenset({"dbstat", "sqlite_dbpage"})
# Pragmas whose argument names a thing to describe, never a new setting: allowed with or without it.
_DESCRIBING = {"table_info", "table_xinfo", "table_list", "index_info", "index_xinfo", "index_list",
               "foreign_key_list", "foreign_key_check", "integrity_check", "quick_check", "collation_list",
               "function_list", "module_list", "pragma_list"}
# Pragmas that only read a setting when given no argument (with one they would change it).
_READ_SETTINGS = {"user_version", "application_id", "schema_version", "data_version", "page_count", "page_size",
                  "freelist_count", "max_page_count", "foreign_keys", "recursive_triggers", "encoding",
                  "auto_vacuum", "journal_mode", "synchronous", "cache_size", "busy_timeout", "compile_options"}
# Pragmas that even privileged SQL may not run: they weaken durability or the sandbox, or touch files.
_NEVER_PRAGMAS = {"journal_mode", "synchronous", "writable_schema", "temp_store_directory", "data_store_directory",
                  "mmap_size", "max_page_count", "page_size", "locking_mode", "trusted_schema", "cell_size_check",
                  "query_only", "wal_checkpoint", "wal_autocheckpoint", "journal_size_limit"}


@dataclass(frozen=True)
class Refusal:
    reason: str
    message: str
    metadata: dict[str, str] = field(default_factory=dict)


_SCHEMA_REFUSAL = Refusal("SCHEMA_CHANGE", "schema changes (CREATE/DROP/ALTER) are not allowed in a request's "
                          "SQL; use the schema claim")


class Authorizer:
    """The connection's only authorizer: the request's SQL restricted, privileged SQL nearly free."""

    def __init__(self) -> None:
        self.privileged = False
        # Whether privileged SQL may control transactions: only the engine's own BEGIN/COMMIT and the schema phase.
        self.transactions = False
        self.readonly = False
        self.target: str | None = None
        self.filtered: frozenset[str] = frozenset()
        # Filtered names no filter names: every row hidden, so they read as empty.
        self.unfiltered: frozenset[str] = frozenset()
        self.virtual: frozenset[str] = frozenset()
        self.readers: frozenset[str] = frozenset()
        self.keys: frozenset[tuple[str, str]] = frozenset()
        # Set per statement of the request's own: it reads through the fast views; it writes.
        self.fast = False
        self.writes = False
        self.refusal: Refusal | None = None
        # Whether a statement was prepared (so may sit in the cache) with privilege since the last attach.
        self.authorized_privileged = False

    def attach(self, conn: apsw.Connection) -> None:
        conn.authorizer = self
        self.authorized_privileged = False

    def __call__(self, action: int, first: str | None, second: str | None, database: str | None,
                 accessor: str | None) -> int:
        if action in _ALWAYS_ALLOWED:
            return apsw.SQLITE_OK
        if self.privileged:
            self.authorized_privileged = True
            refusal = self._never(action, first, second) or self._privileged_transaction(action)
        else:
            refusal = self._never(action, first, second) or self._refusal(action, first, second, database, accessor)
        if refusal is None:
            return apsw.SQLITE_OK
        # DDL says it best: DROP TABLE is also a DELETE from sqlite_master, asked about first.
        if self.refusal is None or refusal is _SCHEMA_REFUSAL:
            self.refusal = refusal
        return apsw.SQLITE_DENY

    def _never(self, action: int, first: str | None, second: str | None) -> Refusal | None:
        """What no SQL may do, privileged or not: reach other files, load code, weaken storage."""
        if action in (apsw.SQLITE_ATTACH, apsw.SQLITE_DETACH):
            return Refusal("FILE_ACCESS", "ATTACH and DETACH (VACUUM INTO included) are never allowed")
        if action == apsw.SQLITE_FUNCTION and fold(second or "") == "load_extension":
            return Refusal("LOAD_EXTENSION", "load_extension is never allowed")
        name = fold(first or "")
        if action == apsw.SQLITE_PRAGMA and name in _NEVER_PRAGMAS and (second is not None or name not in _READ_SETTINGS):
            return Refusal("PRAGMA", f"PRAGMA {first} is never allowed: Loot manages how the file is stored")
        return None

    def _privileged_transaction(self, action: int) -> Refusal | None:
        if action in _TRANSACTIONS and not self.transactions:
            return _TRANSACTION_REFUSAL
        return None

    def _refusal(self, action: int, first: str | None, second: str | None, database: str | None,
                 accessor: str | None) -> Refusal | None:
        name = fold(first or "")
        if action == apsw.SQLITE_READ and name in _PAGE_READERS:
            return Refusal("PAGE_READER", f"{first} reads pages beneath the filters", {"table": first or ""})
        if action in (apsw.SQLITE_READ, *_WRITES) and database == "main" and name in self.virtual:
            return Refusal("VIRTUAL_TABLE", f"virtual table {first} is reachable from privileged SQL only "
                           "(instead, before, after): rules cannot guard it", {"table": first or ""})
        if action == apsw.SQLITE_READ:
            return self._read(first or "", second or "", database, accessor)
        if action in _WRITES:
            return self._write(_WRITES[action], first or "", database)
        if action in _SCHEMA_CHANGES:
            return _SCHEMA_REFUSAL
        if action in _TRANSACTIONS:
            return _TRANSACTION_REFUSAL
        if action == apsw.SQLITE_PRAGMA and not (name in _DESCRIBING or (name in _READ_SETTINGS and second is None)):
            return Refusal("PRAGMA", f"PRAGMA {first}{'' if second is None else ' with an argument'} is not allowed "
                           "in a request's SQL; only read-only introspection is")
        return None

    def _read(self, table: str, column: str, database: str | None, accessor: str | None) -> Refusal | None:
        name, reader = fold(table), fold(accessor or "")
        if reader.startswith(FAST_VIEW) and not self.fast:
            return Refusal("FILTERED_TABLE", f"{accessor} is Loot's own view of {table}: name it {table}",
                           {"table": table})
        if database != "main" or name not in self.filtered:
            return None
        if reader in self.readers or (accessor is None and name == self.target):
            return None
        if accessor is None and self.writes and (name, fold(column)) in self.keys:
            return None  # SQLite's foreign-key check: it tells whether a key exists, never a row's content
        if name in self.unfiltered:  # e.g. count(*), which SQLite answers from the table itself
            return Refusal("NO_FILTER", f"table {table} has no filter, so the request's SQL reads it as empty: "
                           f"add a row for it to _filters to open it", {"table": table})
        return Refusal("FILTERED_TABLE", f"{database}.{table} is read through its filters: name it {table}",
                       {"table": table})

    def _write(self, operation: str, table: str, database: str | None) -> Refusal | None:
        if fold(table).startswith("sqlite_"):
            return _SCHEMA_REFUSAL
        if system_tables.is_system_table(table):
            return Refusal("SYSTEM_TABLE", f"{table} is a system table: the request's SQL may not write it",
                           {"table": table})
        if self.readonly:
            return Refusal("READONLY", f"this token is readonly: its SQL may not {operation} {database}.{table}",
                           {"table": table})
        return None


_TRANSACTION_REFUSAL = Refusal("TRANSACTION_CONTROL",
                               "transaction control is not allowed: Loot runs each request in one transaction")
