"""A thread that interrupts statements past their time limit, wherever SQLite is in them.

The progress handler (loot/shard/sandbox.py) looks at the clock every PROGRESS_STEPS VM steps, and a step can
be long: a sorter insert of a 1 MiB key, an integrity check, a row of big values. `sqlite3_interrupt`,
which SQLite checks at each loop and inside such long operations, stops them: this thread calls it
(through `Sandbox.interrupt_if_late`) on every connection whose statement is past its stop time.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

INTERVAL = 0.02  # seconds between looks: how far past its limit an interrupted statement can run


class Watched(Protocol):
    def interrupt_if_late(self, now: float) -> None: ...


_running: set[Watched] = set()  # sandboxes inside a request (add, discard, tuple(): atomic under the GIL)
_started = threading.Lock()
_thread: threading.Thread | None = None


def watch(sandbox: Watched) -> None:
    """Watch the sandbox until `unwatch`: called as each request starts and ends."""
    _running.add(sandbox)
    if _thread is None:
        _start()


def unwatch(sandbox: Watched) -> None:
    _running.discard(sandbox)


def _start() -> None:
    global _thread
    with _started:
        if _thread is None:
            _thread = threading.Thread(target=_look, name="sqlite-watchdog", daemon=True)
            _thread.start()


def _look() -> None:
    while True:
        time.sleep(INTERVAL)
        now = time.monotonic()
        for sandbox in tuple(_running):
            sandbox.interrupt_if_late(now)
