"""A least-recently-used cache bounded by the bytes its entries hold, not by their count.

Every cache keyed by what a client sends (SQL text, schema claims, tokens) uses it: a
count bound lets one client pin count x largest-entry bytes (1,024 SQL texts of 1 MiB
is 2 GiB with their rewritten copies); a byte bound holds whatever the entries are.
An entry larger than a quarter of the bound is not kept: it would evict most others
for one use. Thread-safe: shard worker threads share the module-level caches.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import fields, is_dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
R = TypeVar("R")

_MISSING = object()


def footprint(value: object) -> int:
    """Bytes `value` holds: its own size plus, for containers and dataclasses, their contents'.
    Iterative, for a client's JSON may nest deeper than Python recurses. Shared objects are counted
    at each use, which only errs towards evicting sooner."""
    total, pending = 0, [value]
    while pending:
        item = pending.pop()
        total += sys.getsizeof(item)
        if isinstance(item, dict):
            pending += item.keys()
            pending += item.values()
        elif isinstance(item, (tuple, list, set, frozenset)):
            pending += item
        elif is_dataclass(item) and not isinstance(item, type):
            pending += (getattr(item, field.name) for field in fields(item))
    return total


class ByteLRU(Generic[K, V]):
    def __init__(self, max_bytes: int, size: Callable[[K, V], int] = lambda key, value: footprint((key, value)),
                 max_entries: int | None = None):
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self._size = size
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K, default: V | None = None) -> V | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return default
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: K, value: V) -> None:
        size = self._size(key, value)
        with self._lock:
            self._pop(key)
            if size * 4 > self.max_bytes:
                return
            self._entries[key] = (value, size)
            self.bytes += size
            while self.bytes > self.max_bytes or (self.max_entries is not None and len(self._entries) > self.max_entries):
                self._pop(next(iter(self._entries)))

    def pop(self, key: K) -> None:
        with self._lock:
            self._pop(key)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.bytes = 0

    def _pop(self, key: K) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.bytes -= entry[1]


def memoize(max_bytes: int) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """`functools.lru_cache` for a pure function of hashable arguments, bounded by bytes (of
    the arguments and the result) instead of by count. Exceptions are not cached."""

    def decorate(function: Callable[..., R]) -> Callable[..., R]:
        cache: ByteLRU[tuple, R] = ByteLRU(max_bytes)

        @functools.wraps(function)
        def cached(*args: Hashable) -> R:
            found = cache.get(args, _MISSING)
            if found is _MISSING:
                found = function(*args)
                cache.put(args, found)
            return found

        cached.cache = cache  # type: ignore[attr-defined]  # for tests and metrics
        return cached

    return decorate
