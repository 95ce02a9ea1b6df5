"""An account's view of its fleet (docs/fleet.md): its databases and their census, across every shard.

Calls carry an account token (`scope: account`) minted from the account's own key, renewed before
expiry; a certified app key cannot sign one (docs/tokens.md)."""

from __future__ import annotations

from collections.abc import Iterator

import grpc

from loot.errors import from_rpc_error
from loot.tokens import Key
from loot.v1 import database_pb2 as pb
from loot.v1 import database_pb2_grpc
from loot.sdk.tokens import AccountToken


class Account:
    def __init__(self, channel: grpc.Channel, key: Key, timeout: float | None, ttl: int = 900):
        self._stub = database_pb2_grpc.AccountStub(channel)
        self._token = AccountToken(key, ttl=ttl)
        self.timeout = timeout

    def databases(self, name: str = "", tenant_prefix: str = "", page_size: int = 0) -> Iterator[pb.DatabaseInfo]:
        """Every database of the account (of `name`, tenants starting with `tenant_prefix`), in
        (name, tenant) order, fetched a page at a time."""
        token = ""
        while True:
            page = self.page(name, tenant_prefix, page_size, token)
            yield from page.databases
            token = page.next_page_token
            if not token:
                return

    def page(self, name: str = "", tenant_prefix: str = "", page_size: int = 0,
             page_token: str = "") -> pb.ListDatabasesResponse:
        request = pb.ListDatabasesRequest(name=name, tenant_prefix=tenant_prefix, page_size=page_size,
                                          page_token=page_token)
        return self._call(self._stub.ListDatabases, request)

    def census(self, name: str = "") -> pb.CensusResponse:
        """How many databases and bytes per (name, schema hash)."""
        return self._call(self._stub.Census, pb.CensusRequest(name=name))

    def rollout(self, name: str, schema: str, *, canary: int = 0, concurrency: int = 0,
                timeout: float | None = None) -> Iterator[pb.RolloutProgress]:
        """Apply `schema` to every database of `name` now, canary first; progress after each database.
        Stop by closing the iterator (or Ctrl-C); call again to resume. Ends with phase "done" or "refused"."""
        request = pb.RolloutRequest(name=name, schema=schema, canary=canary, concurrency=concurrency)
        stream = self._stub.Rollout(request, metadata=self._metadata(), timeout=timeout)
        try:
            yield from stream
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        finally:
            stream.cancel()

    def destroy(self, name: str, tenants: list[str], confirm: str) -> pb.DestroyDatabasesResponse:
        """Destroy the databases of `name` for each of `tenants`, for good. `confirm` must be exactly
        "destroy N databases of NAME"; tenants with no such database come back in `missing`."""
        request = pb.DestroyDatabasesRequest(name=name, tenants=tenants, confirm=confirm)
        return self._call(self._stub.DestroyDatabases, request)

    def _call(self, method, request):
        try:
            return method(request, metadata=self._metadata(), timeout=self.timeout)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self._token.current()}"),)
