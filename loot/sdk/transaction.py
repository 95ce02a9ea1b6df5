"""An interactive transaction on one database (docs/transactions.md), over one Transaction stream.

    with db.transaction() as tx:              # async with db.transaction() as tx: ... await tx.execute(...)
        balance = tx.execute("SELECT balance FROM accounts WHERE id = ?", [1]).scalar()
        tx.execute("UPDATE accounts SET balance = ? WHERE id = ?", [balance - 10, 1])

Commits when the block ends normally, rolls back when it raises. A statement's error is raised where it
ran and leaves the transaction open (catch it to go on); an error that ended the transaction (Aborted,
a limit) ends the stream too. The same class body serves sync and asyncio, as Database does.

`begin` goes where a unary call would (loot/sdk/routes.py): straight to the owner when known, and once more
through the configured address when that failed having run nothing, or unanswered on a connection that
failed (a begin alone commits nothing; the shard rolls back what a broken stream began). Once `begin` is
answered the transaction lives on that shard: a failure after it is raised. A shard that forwarded it (no
longer the owner) says so with that answer (initial `loot-epoch` metadata): the topology is refreshed at
the next call.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Sequence

import grpc
from google.rpc import status_pb2

from loot.errors import LootError, from_rpc_error, from_status
from loot.sdk.requests import Params, statement
from loot.sdk.result import from_batch
from loot.sdk.routes import began_nothing
from loot.v1 import database_pb2 as pb

_BEGIN = pb.TransactionRequest(begin=pb.TransactionBegin())


class _Transaction:
    def __init__(self, database, metadata, timeout: float | None):
        self._database = database  # its _route, _stub, _missed and _routes: where `begin` goes
        self._metadata = metadata
        self._timeout = timeout
        self.open = False
        self.ended = False  # the shard answered `end`: the call finishes OK
        self.schema_changes: list[str] = []

    def execute(self, sql: str, params: Params = ()):
        """Run one statement in the transaction; returns a Result."""
        return self._exchange(_statements([(sql, params)]), lambda response: from_batch(response.results)[0])

    def batch(self, statements: Sequence[tuple[str, Params] | str]):
        """Run several statements in the transaction, in order; returns a Result per statement."""
        return self._exchange(_statements(statements), lambda response: from_batch(response.results))

    def commit(self):
        """Commit and end the transaction."""
        return self._exchange(_end(True), lambda response: None)

    def rollback(self):
        """Roll back and end the transaction."""
        return self._exchange(_end(False), lambda response: None)

    def _begun(self, response: pb.TransactionResponse) -> _Transaction:
        self.open = True
        self.schema_changes = list(response.begun.schema_changes)
        return self

    def _exchange(self, request: pb.TransactionRequest, parse: Callable):
        raise NotImplementedError


def _statements(statements: Sequence[tuple[str, Params] | str]) -> pb.TransactionRequest:
    items = [(item, ()) if isinstance(item, str) else item for item in statements]
    return pb.TransactionRequest(statements=pb.BatchRequest(statements=[statement(sql, params)
                                                                         for sql, params in items]))


def _end(commit: bool) -> pb.TransactionRequest:
    return pb.TransactionRequest(end=pb.TransactionEnd(commit=commit))


def _answer(transaction: _Transaction, response: pb.TransactionResponse, parse: Callable):
    """The parsed answer, or the statement's error raised (the transaction stays open)."""
    if response.HasField("ended"):
        transaction.open = False
        transaction.ended = True
    if response.HasField("error"):
        raise from_status(status_pb2.Status.FromString(response.error))
    return parse(response)


def _closed() -> LootError:
    return LootError("the transaction has ended", code=grpc.StatusCode.FAILED_PRECONDITION, reason="TRANSACTION_ENDED")


def _drain(call) -> None:
    try:
        for _ in call:
            pass
    except grpc.RpcError:
        pass  # the answer to `end` came already: nothing is left to learn


class Transaction(_Transaction):
    """Synchronous: `with db.transaction() as tx: tx.execute(...)`."""

    def __enter__(self) -> Transaction:
        direct = self._database._route(self._metadata)
        try:
            if direct is not None:
                try:
                    self._begin(direct)
                except grpc.RpcError as error:
                    self._requests.put(None)
                    self._call.cancel()
                    if not self._database._missed(error, began_nothing):
                        raise
                else:
                    self._database._routes.forwarded(self._call.initial_metadata())
                    return self
            return self._begin(self._database._stub)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    def _begin(self, stub) -> Transaction:
        """Open the stream on `stub` and send `begin`; raises the call's error as it came."""
        self._requests: queue.SimpleQueue[pb.TransactionRequest | None] = queue.SimpleQueue()
        self._call = stub.Transaction(iter(self._requests.get, None), metadata=self._metadata, timeout=self._timeout)
        self._requests.put(_BEGIN)
        return _answer(self, next(self._call), self._begun)

    def __exit__(self, kind, error, traceback) -> None:
        try:
            if self.open:
                self.commit() if kind is None else self.rollback()
        finally:
            self._requests.put(None)  # our side is done
            if self.ended:
                _drain(self._call)  # to its OK status: cancelling now would end it CANCELLED
            else:
                self._call.cancel()  # the stream failed, or the block left it: the shard rolls back

    def _exchange(self, request: pb.TransactionRequest, parse: Callable):
        if not self.open:
            raise _closed()
        self._requests.put(request)
        try:
            response = next(self._call)
        except grpc.RpcError as error:
            self.open = False
            raise from_rpc_error(error) from None
        return _answer(self, response, parse)


class AsyncTransaction(_Transaction):
    """asyncio: `async with db.transaction() as tx: await tx.execute(...)`."""

    async def __aenter__(self) -> AsyncTransaction:
        direct = await self._database._route(self._metadata)
        try:
            if direct is not None:
                try:
                    await self._begin(direct)
                except grpc.RpcError as error:
                    self._call.cancel()
                    if not self._database._missed(error, began_nothing):
                        raise
                else:
                    self._database._routes.forwarded(await self._call.initial_metadata())
                    return self
            return await self._begin(self._database._stub)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    async def _begin(self, stub) -> AsyncTransaction:
        """Open the stream on `stub` and send `begin`; raises the call's error as it came."""
        self._call = stub.Transaction(metadata=self._metadata, timeout=self._timeout)
        await self._call.write(_BEGIN)
        response = await self._call.read()
        if response is grpc.aio.EOF:  # ended without a status: cannot happen with a Loot server
            raise _closed()
        return _answer(self, response, self._begun)

    async def __aexit__(self, kind, error, traceback) -> None:
        try:
            if self.open:
                await (self.commit() if kind is None else self.rollback())
        finally:
            if self.ended:
                await self._call.done_writing()
                await self._call.code()  # to its OK status: cancelling now would end it CANCELLED
            else:
                self._call.cancel()  # the stream failed, or the block left it: the shard rolls back

    async def _exchange(self, request: pb.TransactionRequest, parse: Callable):
        if not self.open:
            raise _closed()
        try:
            await self._call.write(request)
            response = await self._call.read()
        except grpc.RpcError as error:
            self.open = False
            raise from_rpc_error(error) from None
        if response is grpc.aio.EOF:  # ended without a status: cannot happen with a Loot router
            self.open = False
            raise _closed()
        return _answer(self, response, parse)

