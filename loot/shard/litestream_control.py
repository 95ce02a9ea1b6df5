"""Litestream's control socket (0.5's `socket:` setting): HTTP over a Unix socket, used to add a database
to the running replicator's set and take it out again without a restart (loot/shard/active_set.py).

`register` opens the database in Litestream and resumes from the position Litestream recorded beside it
(DATA/ab/cd/.<id>.sqlite-litestream): no new snapshot when nothing was written meanwhile. `unregister`
closes it, syncing its last changes only if Litestream had begun to follow it (it starts on its own
schedule: a database registered a moment ago may have nothing shipped), so `sync` with `wait` comes
first. Litestream drops the database from its set even when an unregister fails.
"""

from __future__ import annotations

import asyncio
import json

TIMEOUT = 60.0  # an unregister waits for the database's final upload
NOT_FOUND = 404
REGISTER_TIMEOUT = 5.0  # a request waits this long at most for its database to join


class ControlError(Exception):
    """Litestream refused a control request (`status`, its HTTP status) or could not be reached (0)."""

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


async def request(socket: str, path: str, body: dict | None = None, timeout: float = TIMEOUT) -> dict:
    """One request to the control socket at `socket`: POST `body` as JSON, or GET when None."""
    payload = json.dumps(body).encode() if body is not None else b""
    head = (f"{'POST' if body is not None else 'GET'} {path} HTTP/1.1\r\nHost: litestream\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\nConnection: close\r\n\r\n")
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_unix_connection(socket)
            try:
                writer.write(head.encode() + payload)
                await writer.drain()
                answer = await reader.read()
            finally:
                writer.close()
    except (OSError, TimeoutError) as error:
        raise ControlError(f"litestream's control socket: {error or 'timed out'}") from error
    status_line, _, rest = answer.partition(b"\r\n")
    _, _, content = rest.partition(b"\r\n\r\n")
    parts = status_line.split(b" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    try:
        decoded = json.loads(content) if content.strip() else {}
    except ValueError:
        decoded = {"error": content.decode(errors="replace")}
    if status != 200:
        raise ControlError(f"litestream {path}: {status} {decoded.get('error', decoded)}", status)
    return decoded


async def register(socket: str, database: str, replica_url: str) -> None:
    await request(socket, "/register", {"path": database, "replica_url": replica_url}, REGISTER_TIMEOUT)


async def sync(socket: str, database: str) -> bool:
    """Ship the database's changes now and wait until the replica has them; False when Litestream does
    not hold the database (a registration that never went through)."""
    try:
        await request(socket, "/sync", {"path": database, "wait": True, "timeout": int(TIMEOUT)})
    except ControlError as error:
        if error.status == NOT_FOUND:
            return False
        raise
    return True


async def unregister(socket: str, database: str) -> None:
    await request(socket, "/unregister", {"path": database, "timeout": int(TIMEOUT)})

