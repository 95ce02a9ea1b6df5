"""The SDK's requests: a statement and its parameters as loot.v1 messages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from loot.v1 import database_pb2 as pb
from loot.values import to_value

Params = Sequence[Any] | Mapping[str, Any]


def statement(sql: str, params: Params = ()) -> pb.Statement:
    """One statement with positional (a sequence) or named (a mapping) parameters."""
    if isinstance(params, Mapping):
        return pb.Statement(sql=sql, named_params={name: to_value(value) for name, value in params.items()})
    return pb.Statement(sql=sql, params=[to_value(value) for value in params])
