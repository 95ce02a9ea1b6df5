"""A set of key thumbprints given by a flag and/or a file that is reloaded without a restart.

The file (docs/operations.md, "Who may use the cluster"): one RFC 7638 thumbprint per line
(43 base64url characters, what `loot keygen` prints as the account); `#` starts a comment;
blank lines are ignored. It is checked like the membership file: when its inode, size or
mtime changes (polled, since a Kubernetes ConfigMap swaps a symlink) and on SIGHUP. A file
that cannot be read or has a bad line is logged and ignored: the process keeps the list it had.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from loot.reloading import FileChanges, watch

log = logging.getLogger("loot.accounts")
_THUMBPRINT = re.compile(r"[A-Za-z0-9_-]{43}")


def parse_thumbprints(text: str, where: str) -> frozenset[str]:
    """The thumbprints of a list (one per line or comma-separated); ValueError names the first bad entry."""
    found: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        for item in filter(None, (part.strip() for part in line.split("#", 1)[0].split(","))):
            if not _THUMBPRINT.fullmatch(item):
                raise ValueError(f"{where} line {number}: {item[:64]!r} is not a key thumbprint "
                                 "(43 base64url characters, as `loot keygen` prints the account)")
            found.add(item)
    return frozenset(found)


class ThumbprintList:
    """`fixed` (from a flag) plus what `path` lists now. `what` names the list in logs ("allowed accounts")."""

    def __init__(self, what: str, fixed: frozenset[str] = frozenset(), path: Path | None = None):
        self.what = what
        self.fixed = fixed
        self.path = path
        self._changes = FileChanges(path) if path else None
        self.current = fixed | (self._read() if path else frozenset())

    def _read(self) -> frozenset[str]:
        assert self.path is not None
        return parse_thumbprints(self.path.read_text(), str(self.path))

    @classmethod
    def from_settings(cls, what: str, listed: str | None, path: str | None) -> ThumbprintList:
        """From a flag's comma-separated value and a file name; SystemExit says what is wrong with either."""
        try:
            return cls(what, parse_thumbprints(listed or "", "the list given"), Path(path) if path else None)
        except (OSError, ValueError) as error:
            raise SystemExit(f"loot: cannot read the {what}: {error}") from None

    def reload(self) -> bool:
        """Read the file again if it changed; True when a new list took effect."""
        if self._changes is None or not self._changes.changed():
            return False
        try:
            loaded = self.fixed | self._read()
        except (OSError, ValueError) as error:
            log.warning("%s: %s not reloaded (keeping the %d listed): %s", self.what, self.path,
                        len(self.current), error)
            return False
        self.current = loaded
        log.info("%s: %d listed, reloaded from %s", self.what, len(loaded), self.path)
        return True

    def start_watching(self, poll_seconds: float) -> None:
        """Reload on SIGHUP and, when poll_seconds > 0, whenever the file changes (needs the running loop)."""
        if self.path is not None:
            watch(self.reload, poll_seconds)
