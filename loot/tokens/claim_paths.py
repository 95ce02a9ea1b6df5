"""The dotted paths `claim()` reads a payload by, checked once by the router so that every shard reads them alike.

A shard flattens the verified payload into {dotted path: value} (loot/shard/access/claims.py),
descending objects only, at most MAX_DEPTH members deep. Two things a payload may say are
refused here: two members with one path (`{"user": {"id": 1}, "user.id": 2}`: which one
claim('user.id') read would depend on member order), and paths whose text adds up to more
than MAX_PATH_CHARS (a shard keeps every path of a request's claims, per open database; a
64 KiB token of deep, long keys would otherwise spell out tens of MiB of paths).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from loot.tokens.errors import invalid, shown

MAX_DEPTH = 32
MAX_PATH_CHARS = 256 * 1024


def paths(payload: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """Every (dotted path, value) `claim()` can read in `payload`, a parent before its members."""
    stack: list[tuple[str, dict[str, Any], int]] = [("", payload, 1)]
    while stack:
        prefix, node, depth = stack.pop()
        for key, value in node.items():
            path = prefix + key
            yield path, value
            if type(value) is dict and depth < MAX_DEPTH:  # what json.loads makes: no subclasses
                stack.append((path + ".", value, depth + 1))


def check_paths(payload: dict[str, Any]) -> None:
    """INVALID_ARGUMENT if two members share a dotted path, or the paths are too long in all."""
    seen: set[str] = set()
    chars = 0
    for path, _ in paths(payload):
        if path in seen:
            raise invalid("AMBIGUOUS_CLAIM", f"two members of the token have the path {shown(path)} (a nested one and "
                          "one whose name has a dot): claim() would not know which to read; rename one",
                          claim=path[:64])
        seen.add(path)
        chars += len(path)
        if chars > MAX_PATH_CHARS:
            raise invalid("CLAIM_PATHS_TOO_LONG", f"the dotted paths of the token's claims add up to more than "
                          f"{MAX_PATH_CHARS} characters: nest less, or use shorter names", limit=MAX_PATH_CHARS)
