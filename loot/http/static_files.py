"""The files of loot/http/static/ at `/` on the HTTP port (the playground): GET and HEAD only."""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loot.http.responses import respond

STATIC = Path(__file__).resolve().parent / "static"


def static_file(path: str, root: Path = STATIC) -> Path | None:
    """The file a URL path names under `root` (`/` and folders: their index.html), None if there is none
    or it lies outside `root`."""
    candidate = (root / path.lstrip("/")).resolve()
    if candidate.is_dir():
        candidate = candidate / "index.html"
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


async def serve_static(scope: dict[str, Any], send: Callable) -> None:
    """Answer a GET or HEAD for a file, or 404 with a message."""
    found = static_file(scope["path"])
    if found is None:
        body, status, content_type = f"not found: {scope['path']}\n".encode(), 404, "text/plain; charset=utf-8"
    else:
        body, status = found.read_bytes(), 200
        content_type = mimetypes.guess_type(found.name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type.endswith(("javascript", "json")):
            content_type += "; charset=utf-8"
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode()),
               (b"cache-control", b"no-cache"), (b"x-content-type-options", b"nosniff")]
    await respond(send, status, headers, b"" if scope["method"] == "HEAD" else body)
