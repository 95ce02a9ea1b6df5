"""The codecs the HTTP port speaks, handing the servicer serialized messages as gRPC does.

Loot's handlers take and return serialized messages (the router forwards the client's bytes
without parsing them). So the binary codec passes bytes through both ways, and the JSON codec
converts between JSON and the binary form, once each way, with Google's protobuf (the classes
the generated stubs name).
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from loot.http.errors import fault


@dataclass(frozen=True, slots=True)
class Serialized:
    """A response as the servicer returned it: its bytes, and the message class they encode."""

    data: bytes
    message_class: type[Message]


class BinaryCodec:
    """`application/proto` and gRPC-Web's `+proto`: the bytes as they came, and as the servicer answered."""

    def name(self) -> str:
        return "proto"

    def encode(self, message: Serialized) -> bytes:
        return message.data

    def decode(self, data: bytes | bytearray, message_class: type[Message]) -> bytes:
        return bytes(data)


class JsonCodec:
    """`application/json`: the canonical protobuf JSON mapping. Unknown fields are skipped, as the binary
    form skips them, so a client built against a newer API still reaches an older server."""

    def name(self) -> str:
        return "json"

    def encode(self, message: Serialized) -> bytes:
        parsed = message.message_class.FromString(message.data)
        return json_format.MessageToJson(parsed, indent=None).encode()

    def decode(self, data: bytes | bytearray, message_class: type[Message]) -> bytes:
        """The request's binary form; JSON that is not one is refused as the binary form would be."""
        try:
            return json_format.Parse(bytes(data), message_class(), ignore_unknown_fields=True).SerializeToString()
        except (json_format.ParseError, ValueError, RecursionError) as error:
            raise fault(grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED_REQUEST",
                        f"the request is not a valid {message_class.DESCRIPTOR.full_name} in JSON: {error}") from None


CODECS = [BinaryCodec(), JsonCodec()]
