"""Loot's errors (google.rpc.Status with an ErrorInfo, loot/status.py) as Connect errors: the same code,
message and details, which Connect puts in the JSON body (`details`: type and base64 `value`) or, for
gRPC-Web, in the `grpc-status-details-bin` trailer."""

from __future__ import annotations

import grpc
from connectrpc.code import Code
from connectrpc.errors import ConnectError, ErrorDetail
from google.rpc import status_pb2
from protobuf.wkt import Any

from loot.status import status_message

# grpc.StatusCode -> the Connect code of the same number (Connect spells CANCELLED with one L).
CODES = {status.value[0]: Code[status.name.replace("CANCELLED", "CANCELED")] for status in grpc.StatusCode
         if status is not grpc.StatusCode.OK}


def connect_error(status: status_pb2.Status) -> ConnectError:
    details = [ErrorDetail(Any(type_url=detail.type_url, value=detail.value)) for detail in status.details]
    return ConnectError(CODES.get(status.code, Code.UNKNOWN), status.message, details)


def fault(code: grpc.StatusCode, reason: str, message: str) -> ConnectError:
    """A refusal of the HTTP layer's own, in the form the handlers' refusals take."""
    return connect_error(status_message(code, reason, message))
