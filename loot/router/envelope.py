"""The shard request, assembled from bytes: the router never parses or re-serializes a call.

Every internal request (ShardExecuteRequest, ShardBatchRequest, ShardDescribeRequest) is
`Context context = 1; <public request> request = 2;`. In protobuf's wire format a
length-delimited field is its tag, the varint length and the bytes, and fields may come in
any order, so the serialized Context (built once per token) followed by the client's request
bytes as field 2 is exactly the message the shard would get from `SerializeToString`. The
length prefix confines the client's bytes to field 2: they cannot add or change a Context field.
"""

from __future__ import annotations

_CONTEXT_TAG = b"\x0a"  # field 1, wire type 2 (length-delimited)
_REQUEST_TAG = b"\x12"  # field 2, wire type 2


def varint(value: int) -> bytes:
    """`value` (>= 0) as a protobuf base-128 varint."""
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def context_field(context: bytes) -> bytes:
    """A serialized Context as field 1 of a shard request."""
    return _CONTEXT_TAG + varint(len(context)) + context


def shard_request(context_field: bytes, request: bytes) -> bytes:
    """The shard request carrying `context_field` and the client's serialized `request`."""
    return b"".join((context_field, _REQUEST_TAG, varint(len(request)), request))
