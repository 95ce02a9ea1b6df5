"""claim(path): a value of the request's verified token, readable from SQL (SPEC §5)."""

from __future__ import annotations

import json
from typing import Any

_INT64 = range(-(2**63), 2**63)


def lookup(payload: dict[str, Any], path: str) -> Any:
    """The claim at dotted `path` as an SQL value: NULL when absent, JSON text for objects and arrays."""
    node: Any = payload
    for part in str(path).split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    if isinstance(node, bool):
        return int(node)
    if isinstance(node, (dict, list)) or (isinstance(node, int) and node not in _INT64):
        return json.dumps(node, separators=(",", ":"))
    return node


def parse(claims_json: str) -> dict[str, Any]:
    payload = json.loads(claims_json) if claims_json else {}
    return payload if isinstance(payload, dict) else {}
