"""Small JSON files that one process rewrites while others read them (membership, scale requests,
handoff state): replaced atomically, so a reader sees the old document or the new one, never half."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_json(path: Path, document: Any, indent: int | None = None) -> None:
    """Replace `path` with `document` atomically (a temporary file beside it, then a rename)."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(document, indent=indent) + "\n")
    os.replace(temporary, path)


def read_json(path: Path) -> Any | None:
    """The document at `path`; None when it is missing or not JSON."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
