"""A raw synchronous client for loot.v1.Database: tokens in, protobuf responses out (the tests' and
benchmarks' view of the wire, below the SDK)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import grpc

from loot.grpc_options import GRPC_OPTIONS
from loot.sdk.requests import statement
from loot.v1 import database_pb2 as pb
from loot.v1 import database_pb2_grpc
from loot.values import from_value


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
