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
from loot.sdk.routes import Routes, ran_nothing
from loot.sdk.transaction import AsyncTransaction, Transaction
from loot.v1 import database_pb2 as pb
from loot.v1 import database_pb2_grpc


class _Database:
    def __init__(self, channel, tokens, timeout: float | None, routes: Routes | None = None):
        self._stub = database_pb2_grpc.DatabaseStub(channel)  # the configured address
        self._tokens = tokens
        self.timeout = timeout
        self._routes = routes  # None: every call through the configured address

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
        return self._transaction_type(self, self._metadata(), self.timeout)  # routed as it begins

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

    def _direct(self, metadata: tuple[tuple[str, str]]):
        """The owning shard's stub, if the call may go straight to it (see `_route`, which refreshes first)."""
        return self._routes.stub(metadata[0][1][7:]) if self._routes is not None else None

    def _missed(self, error: grpc.RpcError, nothing_ran: Callable[[grpc.RpcError], bool] = ran_nothing) -> bool:
        """After a direct call failed: whether to send it to the configured address instead (`nothing_ran`:
        whether the failure promises that nothing was applied)."""
        if not nothing_ran(error):
            return False
        self._routes.missed()
        return True

    def _call(self, method: str, request, parse: Callable):
        raise NotImplementedError


class Database(_Database):
    """Synchronous: `db.execute(...)` returns a Result."""

    _transaction_type = Transaction

    def _call(self, method: str, request, parse: Callable):
        metadata = self._metadata()
        try:
            return parse(self._send(self._route(metadata), method, request, metadata))
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    def _route(self, metadata):
        """The owning shard's stub, the topology refreshed first when due; None: the configured address."""
        if self._routes is not None and self._routes.due():
            self._routes.learn(self._topology(metadata))
        return self._direct(metadata)

    def _send(self, direct, method: str, request, metadata):
        if direct is not None:
            try:
                response, call = getattr(direct, method).with_call(request, metadata=metadata, timeout=self.timeout)
                self._routes.forwarded(call.trailing_metadata())
                return response
            except grpc.RpcError as error:
                if not self._missed(error):
                    raise
        return getattr(self._stub, method)(request, metadata=metadata, timeout=self.timeout)

    def _topology(self, metadata) -> pb.TopologyResponse | None:
        try:
            return self._stub.Topology(pb.TopologyRequest(), metadata=metadata, timeout=self.timeout)
        except grpc.RpcError:
            return None  # an older server, or a refusal the call itself will report: go through the address


class AsyncDatabase(_Database):
    """asyncio: `await db.execute(...)` returns a Result."""

    _transaction_type = AsyncTransaction

    async def _call(self, method: str, request, parse: Callable):
        metadata = self._metadata()
        try:
            return parse(await self._send(await self._route(metadata), method, request, metadata))
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    async def _route(self, metadata):
        """As Database._route."""
        if self._routes is not None and self._routes.due():
            self._routes.learn(await self._topology(metadata))
        return self._direct(metadata)

    async def _send(self, direct, method: str, request, metadata):
        if direct is not None:
            try:
                call = getattr(direct, method)(request, metadata=metadata, timeout=self.timeout)
                response = await call
                self._routes.forwarded(await call.trailing_metadata())
                return response
            except grpc.RpcError as error:
                if not self._missed(error):
                    raise
        return await getattr(self._stub, method)(request, metadata=metadata, timeout=self.timeout)

    async def _topology(self, metadata) -> pb.TopologyResponse | None:
        try:
            return await self._stub.Topology(pb.TopologyRequest(), metadata=metadata, timeout=self.timeout)
        except grpc.RpcError:
            return None
