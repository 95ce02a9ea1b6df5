"""A handle on one database. The same class body serves sync and asyncio:
each method builds a request and hands it to `_call`, which either returns
the parsed response (Database) or a coroutine of it (AsyncDatabase)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import grpc

from loot.errors import from_rpc_error
from loot.sdk import tools
from loot.sdk.requests import Params, statement
from loot.sdk.result import from_batch, from_execute
from loot.sdk.transaction import AsyncTransaction, Transaction
from loot.v1 import database_pb2 as pb
from loot.v1 import database_pb2_grpc


class _Database:
    def __init__(self, channel, tokens, timeout: float | None):
        self._stub = database_pb2_grpc.DatabaseStub(channel)
        self._tokens = tokens
        self.timeout = timeout

    def execute(self, sql: str, params: Params = ()):
        """Run one statement; returns a Result."""
        return self._call("Execute", pb.ExecuteRequest(statement=statement(sql, params)), from_execute)

    def batch(self, statements: Sequence[tuple[str, Params] | str]):
        """Run several statements in one transaction; returns a Result per statement."""
        items = [(item, ()) if isinstance(item, str) else item for item in statements]
        request = pb.BatchRequest(statements=[statement(sql, params) for sql, params in items])
        return self._call("Batch", request, from_batch)

    def transaction(self):
        """An interactive transaction (loot/sdk/transaction.py): `with db.transaction() as tx:` (asyncio:
        `async with`); commits at the block's end, rolls back if it raises."""
        return self._transaction_type(self._stub, self._metadata(), self.timeout)

    def describe(self):
        """The database's tables, columns, indexes, views, filters and rules (a DescribeResponse)."""
        return self._call("Describe", pb.DescribeRequest(), lambda response: response)

    def as_tools(self):
        """LLM tool definitions (name, description, JSON Schema) for this database; run them with call_tool."""
        return self._call("Describe", pb.DescribeRequest(), tools.from_description)

    def call_tool(self, name: str, arguments: Mapping[str, Any]):
        """Run one of as_tools()'s tools with the arguments a model chose; returns a Result."""
        sql, params = tools.to_statement(name, arguments)
        return self.execute(sql, params)

    def _metadata(self) -> tuple[tuple[str, str]]:
        return (("authorization", f"Bearer {self._tokens.current()}"),)

    def _call(self, method: str, request, parse: Callable):
        raise NotImplementedError


class Database(_Database):
    """Synchronous: `db.execute(...)` returns a Result."""

    _transaction_type = Transaction

    def _call(self, method: str, request, parse: Callable):
        try:
            response = getattr(self._stub, method)(request, metadata=self._metadata(), timeout=self.timeout)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        return parse(response)


class AsyncDatabase(_Database):
    """asyncio: `await db.execute(...)` returns a Result."""

    _transaction_type = AsyncTransaction

    async def _call(self, method: str, request, parse: Callable):
        try:
            response = await getattr(self._stub, method)(request, metadata=self._metadata(), timeout=self.timeout)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        return parse(response)
