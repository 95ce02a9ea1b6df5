"""Clients: one channel to the configured address (a router or any shard), handing out Database handles
that send each call straight to its database's shard when they can (loot/sdk/routes.py)."""

from __future__ import annotations

from typing import Any

import grpc

from loot.sdk.account import Account
from loot.sdk.routes import CHANNEL_OPTIONS, ConnectedSync, Routes, connected_aio, direct_by_default
from loot.sdk.database import AsyncDatabase, Database
from loot.sdk.tokens import FixedToken, MintedToken
from loot.grpc_options import GRPC_OPTIONS
from loot.tokens import Key


def _credentials(tls: bool, root_certificates: bytes | None, private_key: bytes | None,
                 certificate_chain: bytes | None) -> grpc.ChannelCredentials | None:
    if not (tls or root_certificates or certificate_chain):
        return None
    return grpc.ssl_channel_credentials(root_certificates, private_key, certificate_chain)


class _Client:
    _grpc: Any
    _database: type

    def __init__(self, address: str = "127.0.0.1:7070", *, tls: bool = False, root_certificates: bytes | None = None,
                 private_key: bytes | None = None, certificate_chain: bytes | None = None, timeout: float | None = 30.0,
                 direct: bool | None = None):
        """Connect to a router or any shard's public port. `tls=True` uses TLS with the system's CAs,
        `root_certificates` (PEM) with those; `private_key` and `certificate_chain` (PEM) present a client
        certificate (mutual TLS). `timeout` is per call, in seconds. `direct` (default: on unless
        LOOT_DIRECT=0) sends each call straight to its database's shard, falling back to `address`;
        turn it off where clients cannot reach the shards."""
        self._credentials = _credentials(tls, root_certificates, private_key, certificate_chain)
        self.channel = self._open(address, GRPC_OPTIONS)
        self.timeout = timeout
        direct = direct_by_default() if direct is None else direct
        self.routes = self._routes() if direct else None

    def _open(self, address: str, options: list):
        if self._credentials is None:
            return self._grpc.insecure_channel(address, options=options)
        return self._grpc.secure_channel(address, self._credentials, options=options)

    def _routes(self) -> Routes:
        raise NotImplementedError

    def _channels(self) -> list:
        return [self.channel, *(self.routes.channels.values() if self.routes else ())]

    def database(self, name: str, tenant: str, *, key: Key, schema: str | None = None, ttl: int = 900,
                 **claims: Any):
        """The database (key.account, name, tenant); tokens are minted from `key` and renewed before expiry."""
        tokens = MintedToken(key, name, tenant, ttl=ttl, schema=schema, **claims)
        return self._database(self.channel, tokens, self.timeout, self.routes)

    def open(self, token: str):
        """The database a ready token names (from `key.provision(...)` or `loot token`)."""
        return self._database(self.channel, FixedToken(token), self.timeout, self.routes)


class Client(_Client):
    """Synchronous client: `Client("127.0.0.1:7070").database("app", tenant="alice", key=key)`."""

    _grpc = grpc
    _database = Database

    def _routes(self) -> Routes:
        connected = ConnectedSync()
        return Routes(lambda shard: connected.watch(self._open(shard, CHANNEL_OPTIONS)), connected)

    def account(self, key: Key, *, ttl: int = 900) -> Account:
        """The account `key` is (its own key, not a certified app key): its databases and census."""
        return Account(self.channel, key, self.timeout, ttl)

    def close(self) -> None:
        for channel in self._channels():
            channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient(_Client):
    """asyncio client with the same shape: `await db.execute(...)`."""

    _grpc = grpc.aio
    _database = AsyncDatabase

    def _routes(self) -> Routes:
        return Routes(lambda shard: self._open(shard, CHANNEL_OPTIONS), connected_aio)

    async def close(self) -> None:
        for channel in self._channels():
            await channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
