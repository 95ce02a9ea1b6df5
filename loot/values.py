"""Conversion between loot.v1.Value and Python values (None, int, float, str, bytes)."""

from __future__ import annotations

from typing import Any

from google.protobuf import struct_pb2

from loot.v1 import database_pb2 as pb

SqlValue = None | int | float | str | bytes


def to_value(value: Any) -> pb.Value:
    if value is None:
        return pb.Value(null=struct_pb2.NULL_VALUE)
    if isinstance(value, bool):
        return pb.Value(integer=int(value))
    if isinstance(value, int):
        return pb.Value(integer=value)
    if isinstance(value, float):
        return pb.Value(real=value)
    if isinstance(value, str):
        return pb.Value(text=value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return pb.Value(blob=bytes(value))
    raise TypeError(f"cannot send a {type(value).__name__} to SQLite: use None, int, float, str or bytes")


def from_value(value: pb.Value) -> SqlValue:
    kind = value.WhichOneof("kind")
    if kind is None or kind == "null":
        return None
    return getattr(value, kind)
