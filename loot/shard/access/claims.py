"""claim(path): a value of the request's verified token, readable from SQL (docs/access.md).

The payload is flattened once per request into {dotted path: SQL value}, so
that claim() can be the dict's own `get`: a C call, no Python frame per row.
"""

from __future__ import annotations

import json
from typing import Any

_INT64 = range(-(2**63), 2**63)
# Paths deeper than this read as NULL: flattening costs (payload size x depth).
MAX_DEPTH = 32


def flatten(claims_json: str) -> dict[str, Any]:
    """Every dotted path of the payload -> its SQL value (objects and arrays as JSON text)."""
    payload = json.loads(claims_json) if claims_json else {}
    paths: dict[str, Any] = {}
    if isinstance(payload, dict):
        _add(paths, "", payload, 0)
    return paths


def _add(paths: dict[str, Any], prefix: str, node: Any, depth: int) -> None:
    if prefix:
        paths[prefix] = _sql_value(node)
    if isinstance(node, dict) and depth < MAX_DEPTH:
        for key, value in node.items():
            _add(paths, f"{prefix}.{key}" if prefix else str(key), value, depth + 1)


def _sql_value(node: Any) -> Any:
    if isinstance(node, bool):
        return int(node)
    if isinstance(node, (dict, list)) or (isinstance(node, int) and node not in _INT64):
        return json.dumps(node, separators=(",", ":"))
    return node
