"""Reloading files without a restart: on SIGHUP and, optionally, by polling for a change.

The loop keeps one handler per signal, so every file a process reloads (membership, account
lists) registers its reload here instead of replacing the others' handler.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

_CALLBACKS: dict[asyncio.AbstractEventLoop, list[Callable[[], object]]] = {}
_POLLERS: set[asyncio.Task] = set()  # strong references: the loop keeps only weak ones


def watch(reload: Callable[[], object], poll_seconds: float) -> None:
    """Call `reload` on each SIGHUP and, when poll_seconds > 0, every poll_seconds (needs the running loop;
    asyncio.run cancels the poller when the server's main returns)."""
    loop = asyncio.get_running_loop()
    callbacks = _CALLBACKS.setdefault(loop, [])
    if not callbacks:
        loop.add_signal_handler(signal.SIGHUP, _run_all, callbacks)
    callbacks.append(reload)
    if poll_seconds > 0:
        poller = loop.create_task(_poll(reload, poll_seconds))
        _POLLERS.add(poller)
        poller.add_done_callback(_POLLERS.discard)


def _run_all(callbacks: list[Callable[[], object]]) -> None:
    for callback in callbacks:
        callback()


async def _poll(reload: Callable[[], object], poll_seconds: float) -> None:
    while True:
        await asyncio.sleep(poll_seconds)
        reload()


class FileChanges:
    """Whether a file changed since the last look: its inode, mtime or size (following the symlink a
    Kubernetes ConfigMap swaps; no inotify watch on the file would see that)."""

    def __init__(self, path: Path):
        self.path = path
        self._seen = _fingerprint(path)

    def changed(self) -> bool:
        seen = _fingerprint(self.path)
        if seen == self._seen:
            return False
        self._seen = seen
        return True


def _fingerprint(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size
