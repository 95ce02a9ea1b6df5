"""Spare copies of templates, written and synced ahead of need, so that creating
a database on the request path is a rename instead of a file write and an fsync.

A background thread keeps up to `depth` copies of each recently used template
(the `templates` most recent ones) in a directory under the shard's scratch
directory, which is emptied at start: a copy a crash left half-written is never
served. A copy is offered only once written whole and, with durability full,
fsynced; taking one removes it from the offer under a lock, so each copy
becomes exactly one new database. Copies hold nothing but their template.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections import OrderedDict
from pathlib import Path

from loot.shard.templates import Template

log = logging.getLogger(__name__)
# How long the filling thread waits for more work before it ends (a new one starts when needed).
_LINGER_SECONDS = 2.0


def write_copy(directory: Path, template: Template, power_safe: bool) -> Path:
    """A new file in `directory` holding the template, whole (and on disk, if `power_safe`)."""
    path = directory / f"{template.key[:16]}.{uuid.uuid4().hex}"
    with open(path, "xb") as file:
        file.write(template.image)
        file.flush()
        if power_safe:
            os.fsync(file.fileno())
    return path


class Spares:
    def __init__(self, directory: Path, power_safe: bool, depth: int = 16, templates: int = 8):
        self.directory = directory
        self.power_safe = power_safe
        self.depth = depth
        self.templates = templates
        directory.mkdir()
        # Per template key, most recently wanted last: the template and its ready copies.
        self._ready: OrderedDict[str, tuple[Template, list[Path]]] = OrderedDict()
        self._lock = threading.Lock()
        self._taken = threading.Condition(self._lock)
        self._filling = False

    def take(self, template: Template) -> Path | None:
        """A ready copy of `template`, now the caller's alone, or None; more are made once half are gone.

        Half, not one: waking the filling thread for each copy costs each creation a context switch
        (the woken thread preempts the taker, GIL held); woken at half, it makes half the depth in a row."""
        with self._lock:
            _, ready = self._ready.setdefault(template.key, (template, []))
            self._ready.move_to_end(template.key)
            copy = ready.pop() if ready else None
            forgotten = self._forget_old()
            running_low = len(ready) <= self.depth // 2
            start = running_low and not self._filling
            if running_low:
                self._filling = True
                self._taken.notify()
        _remove(forgotten)
        if start:
            threading.Thread(target=self._fill, name="spares", daemon=True).start()
        return copy

    def ready(self, template: Template) -> int:
        with self._lock:
            return len(self._ready.get(template.key, (template, []))[1])

    def _forget_old(self) -> list[Path]:
        forgotten = []
        while len(self._ready) > self.templates:
            _, (_, ready) = self._ready.popitem(last=False)
            forgotten += ready
        return forgotten

    def _fill(self) -> None:
        """Make copies until every remembered template has `depth` of them, then stop."""
        try:
            while (template := self._short_of_copies()) is not None:
                copy = write_copy(self.directory, template, self.power_safe)
                with self._lock:
                    entry = self._ready.get(template.key)
                    if entry is not None:
                        entry[1].append(copy)
                if entry is None:  # forgotten meanwhile
                    copy.unlink()
        except OSError as error:  # the directory went away (shutdown) or the disk is full: creations write their own
            log.warning("spare template copies stopped: %s", error)
            with self._lock:
                self._filling = False

    def _short_of_copies(self) -> Template | None:
        """The most recently wanted template lacking copies, waiting a while for one; None: the thread ends."""
        with self._lock:
            template = self._taken.wait_for(self._most_wanted_short, _LINGER_SECONDS)
            if template is None:
                self._filling = False
            return template

    def _most_wanted_short(self) -> Template | None:
        return next((template for template, ready in reversed(self._ready.values()) if len(ready) < self.depth), None)


def _remove(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
