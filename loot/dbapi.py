"""A PEP 249 (DB-API 2.0) driver over the SDK (docs/dbapi.md).

    import loot.dbapi
    conn = loot.dbapi.connect("loot://127.0.0.1:7070/app?tenant=alice&key=key.json")
    cur = conn.cursor()
    cur.execute("INSERT INTO notes (body) VALUES (?)", ["hello"])
    conn.commit()

Outside autocommit, the first statement after connect, commit or rollback opens an interactive
transaction (docs/transactions.md) that `commit()` or `rollback()` ends; its idle and total limits apply
(an idle connection's transaction is rolled back, and the next statement raises OperationalError).
With `autocommit=True` each `execute` is one Execute and each `executemany` one Batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from loot import errors
from loot.sdk.client import Client
from loot.sdk.result import Result
from loot.tokens import Key

apilevel = "2.0"
threadsafety = 1  # threads may share the module, not connections
paramstyle = "qmark"  # named (:name) is accepted too


class Warning(Exception):  # noqa: A001 - the name PEP 249 requires
    pass


class Error(Exception):
    """The base of the driver's errors; `loot_error` is the Loot error behind it (docs/errors.md)."""

    def __init__(self, message: str, loot_error: errors.LootError | None = None):
        super().__init__(message)
        self.loot_error = loot_error


class InterfaceError(Error):
    pass


class DatabaseError(Error):
    pass


class DataError(DatabaseError):
    pass


class OperationalError(DatabaseError):
    pass


class IntegrityError(DatabaseError):
    pass


class InternalError(DatabaseError):
    pass


class ProgrammingError(DatabaseError):
    pass


class NotSupportedError(DatabaseError):
    pass


_BY_CLASS: list[tuple[type[errors.LootError], type[Error]]] = [
    (errors.ConstraintViolation, IntegrityError),
    (errors.InvalidArgument, ProgrammingError),
    (errors.PermissionDenied, ProgrammingError),
    (errors.InternalError, InternalError),
]
_DATA_REASONS = {"DATATYPE_MISMATCH", "TOO_BIG"}


def _translated(error: errors.LootError) -> Error:
    if error.reason in _DATA_REASONS:
        kind: type[Error] = DataError
    else:
        kind = next((kind for loot, kind in _BY_CLASS if isinstance(error, loot)), OperationalError)
    return kind(str(error), error)


def connect(url: str | None = None, *, address: str = "127.0.0.1:7070", name: str | None = None,
            tenant: str | None = None, key: Key | str | Path | None = None, token: str | None = None,
            schema: str | None = None, autocommit: bool = False, timeout: float | None = 30.0,
            **claims: Any) -> Connection:
    """A connection to one database: from a router `address` and a `key` (a Key or its file) with `name`
    and `tenant`, or a ready `token`, or a URL `loot://host:port/name?tenant=...&key=path` (also
    `token=...`, `schema=path`)."""
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme != "loot" or not parts.netloc:
            raise InterfaceError(f"not a loot:// URL: {url!r}")
        query = {field: values[-1] for field, values in parse_qs(parts.query).items()}
        address, name = parts.netloc, parts.path.strip("/") or name
        tenant, token = query.pop("tenant", tenant), query.pop("token", token)
        key = query.pop("key", key)
        if "schema" in query:
            schema = Path(query.pop("schema")).read_text()
        if query:
            raise InterfaceError(f"unknown URL parameters: {', '.join(sorted(query))}")
    client = Client(address, timeout=timeout)
    if token is not None:
        database = client.open(token)
    elif key is not None and name and tenant:
        loaded = key if isinstance(key, Key) else Key.load(key)
        database = client.database(name, tenant, key=loaded, schema=schema, **claims)
    else:
        client.close()
        raise InterfaceError("connect needs a token, or a key with a name and a tenant")
    return Connection(client, database, autocommit)


class Connection:
    def __init__(self, client: Client, database, autocommit: bool):
        self._client = client
        self._database = database
        self._transaction = None
        self._autocommit = autocommit
        self.closed = False

    @property
    def autocommit(self) -> bool:
        return self._autocommit

    @autocommit.setter
    def autocommit(self, value: bool) -> None:
        if value and self._transaction is not None:
            self.commit()  # as sqlite3 does: switching autocommit on commits what is pending
        self._autocommit = value

    def cursor(self) -> Cursor:
        self._check_open()
        return Cursor(self)

    def commit(self) -> None:
        self._end(commit=True)

    def rollback(self) -> None:
        self._end(commit=False)

    def close(self) -> None:
        if self.closed:
            return
        try:
            self._end(commit=False)
        finally:
            self.closed = True
            self._client.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        self.commit() if kind is None else self.rollback()

    def _end(self, commit: bool) -> None:
        transaction, self._transaction = self._transaction, None
        if transaction is None or not transaction.open:
            return
        try:
            transaction.commit() if commit else transaction.rollback()
        except errors.LootError as error:
            raise _translated(error) from error
        finally:
            transaction.__exit__(None, None, None)  # closes the stream

    def _target(self):
        """Where a statement runs: the database (autocommit) or the open transaction, opened if need be."""
        self._check_open()
        if self._autocommit:
            return self._database
        if self._transaction is not None and not self._transaction.open:  # Loot ended it (a limit)
            self._transaction.__exit__(None, None, None)
            self._transaction = None
        if self._transaction is None:
            transaction = self._database.transaction()
            self._transaction = transaction.__enter__()
        return self._transaction

    def _check_open(self) -> None:
        if self.closed:
            raise InterfaceError("the connection is closed")


class Cursor:
    arraysize = 1

    def __init__(self, connection: Connection):
        self.connection = connection
        self.description: tuple[tuple, ...] | None = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self._rows: Iterator[tuple] = iter(())
        self.closed = False

    def execute(self, sql: str, parameters: Sequence[Any] | Mapping[str, Any] = ()) -> Cursor:
        self._check_open()
        try:
            result = self.connection._target().execute(sql, parameters)
        except errors.LootError as error:
            raise _translated(error) from error
        self._show(result)
        return self

    def executemany(self, sql: str, seq_of_parameters: Sequence[Sequence[Any] | Mapping[str, Any]]) -> Cursor:
        """One Batch (or one message of the transaction): all the rows or none."""
        self._check_open()
        statements = [(sql, parameters) for parameters in seq_of_parameters]
        if not statements:
            self._show(None)
            return self
        try:
            results = self.connection._target().batch(statements)
        except errors.LootError as error:
            raise _translated(error) from error
        self._show(results[-1])
        self.rowcount = sum(result.rows_written for result in results)
        return self

    def fetchone(self) -> tuple | None:
        return next(self._rows, None)

    def fetchmany(self, size: int | None = None) -> list[tuple]:
        return [row for _, row in zip(range(self.arraysize if size is None else size), self._rows)]

    def fetchall(self) -> list[tuple]:
        return list(self._rows)

    def __iter__(self) -> Iterator[tuple]:
        return self._rows

    def setinputsizes(self, sizes: Any) -> None:
        pass

    def setoutputsize(self, size: Any, column: Any = None) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def _show(self, result: Result | None) -> None:
        if result is None:
            self.description, self.rowcount, self._rows = None, -1, iter(())
            return
        self.description = tuple((name, decltype or None, None, None, None, None, None)
                                 for name, decltype in zip(result.columns, result.decltypes)) or None
        self.rowcount = result.rows_written if result.rows_written or not result.columns else -1
        self.lastrowid = result.last_insert_rowid
        self._rows = iter(result.rows)

    def _check_open(self) -> None:
        if self.closed:
            raise InterfaceError("the cursor is closed")
        self.connection._check_open()
