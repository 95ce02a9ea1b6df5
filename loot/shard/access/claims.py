"""claim(path): a value of the request's verified token, readable from SQL (docs/access.md).

The payload is flattened once per request into {dotted path: SQL value}, so
that claim() can be the dict's own `get`: a C call, no Python frame per row.
"""

from __future__ import annotations

import json
from typing import Any

import grpc

from loot.status import Fault
from loot.tokens.claim_paths import paths

_INT64 = range(-(2**63), 2**63)


def flatten(claims_json: str) -> dict[str, Any]:
    """Every dotted path of the payload -> its SQL value (objects and arrays as JSON text)."""
    try:
        payload = json.loads(claims_json) if claims_json else {}
    except (ValueError, RecursionError):  # a router verifies the claims first (loot/tokens): not from one of ours
        raise Fault(grpc.StatusCode.INVALID_ARGUMENT, "BAD_CLAIMS", "the request's claims are not a JSON object "
                    "nested at most 32 deep") from None
    return {path: _sql_value(node) for path, node in paths(payload)} if isinstance(payload, dict) else {}


def _sql_value(node: Any) -> Any:
    if isinstance(node, bool):
        return int(node)
    if isinstance(node, (dict, list)) or (isinstance(node, int) and node not in _INT64):
        return json.dumps(node, separators=(",", ":"))
    return node
