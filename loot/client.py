"""A minimal synchronous client for loot.v1.Database (the SDK issue grows it)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import grpc

from loot.serving import GRPC_OPTIONS
from loot.v1 import database_pb2 as pb
from loot.v1 import database_pb2_grpc
from loot.values import from_value, to_value


def statement(sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> pb.Statement:
    if isinstance(params, Mapping):
        return pb.Statement(sql=sql, named_params={k: to_value(v) for k, v in params.items()})
    return pb.Statement(sql=sql, params=[to_value(v) for v in params])


def rows(result: pb.Result) -> list[tuple[Any, ...]]:
    return [tuple(from_value(v) for v in row.values) for row in result.rows]


class Client:
    def __init__(self, address: str):
        self.channel = grpc.insecure_channel(address, options=GRPC_OPTIONS)
        self.stub = database_pb2_grpc.DatabaseStub(self.channel)

    def execute(self, token: str, sql: str, params: Sequence[Any] | Mapping[str, Any] = (),
                timeout: float | None = 30) -> pb.ExecuteResponse:
        request = pb.ExecuteRequest(statement=statement(sql, params))
        return self.stub.Execute(request, metadata=_auth(token), timeout=timeout)

    def batch(self, token: str, statements: Sequence[tuple[str, Sequence[Any] | Mapping[str, Any]]],
              timeout: float | None = 30) -> pb.BatchResponse:
        request = pb.BatchRequest(statements=[statement(sql, params) for sql, params in statements])
        return self.stub.Batch(request, metadata=_auth(token), timeout=timeout)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _auth(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)
