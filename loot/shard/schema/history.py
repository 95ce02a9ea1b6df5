"""Which schemas a database has seen, so that the newest wins and nothing reverts.

The history lives in the database itself (`_loot_schema_history`, a name the
sandbox protects), so it moves and is backed up with the data. The last row
is the current schema, with the PRAGMA schema_version it left behind: a
different version means privileged SQL changed the schema since, and the
current schema is checked again. A per-connection cache makes the unchanged
case a string comparison and one PRAGMA.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from dataclasses import dataclass

import apsw

from loot.byte_lru import ByteLRU

TABLE = "_loot_schema_history"
_DDL = f"""CREATE TABLE IF NOT EXISTS main.{TABLE} (seq INTEGER PRIMARY KEY, hash TEXT NOT NULL UNIQUE,
  schema_version INTEGER NOT NULL, applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ')))"""
# Cache value for a schema older than the current one: a no-op whatever the schema version.
_OLDER = -1
_CACHE_LIMIT = 8
# Per connection, recent claims and their verdicts, newest first. Claims are compared with ==
# (lengths, then memcmp), not hashed: each request brings a fresh string, and hashing 16 KB
# costs more than the whole check should.
_known: weakref.WeakKeyDictionary[apsw.Connection, list[tuple[str, int]]] = weakref.WeakKeyDictionary()
_known_guard = threading.Lock()  # worker threads add connections concurrently
# One copy of each recent claim's text, shared by every connection's cache, so ten thousand open
# databases on one claim hold it once.
_shared: ByteLRU[str, str] = ByteLRU(4 * 1024 * 1024)


def digest(claim: str) -> str:
    return hashlib.sha256(claim.encode()).hexdigest()


def schema_version(conn: apsw.Connection) -> int:
    return conn.execute("PRAGMA main.schema_version").fetchone()[0]


def current_hash(conn: apsw.Connection) -> str:
    """The hash of the current schema claim (the history's last row); empty when none was applied."""
    try:
        row = conn.execute(f"SELECT hash FROM main.{TABLE} ORDER BY seq DESC LIMIT 1").fetchone()
    except apsw.SQLError:  # no history table: no claim was ever applied
        return ""
    return "" if row is None else row[0]


def known_unchanged(conn: apsw.Connection, claim: str) -> bool:
    """True when this connection already knows the claim needs nothing (the per-request fast path)."""
    for known, verdict in _known.get(conn, ()):
        if known == claim:
            return verdict == _OLDER or verdict == schema_version(conn)
    return False


def remember(conn: apsw.Connection, claim: str, hash_: str, verdict: int) -> None:
    with _known_guard:
        shared = _shared.get(hash_)
        if shared is None:
            _shared.put(hash_, claim)
        else:
            claim = shared
        known = [(text, old) for text, old in _known.get(conn, ()) if text != claim]
        _known[conn] = [(claim, verdict), *known[:_CACHE_LIMIT - 1]]


@dataclass(frozen=True)
class Seen:
    """What the history says about one claim; `verdict` is its cache value when nothing is to do."""

    hash: str
    verdict: int | None


def look_up(conn: apsw.Connection, claim: str) -> Seen:
    """Inside the apply transaction: is the claim older (no-op), current and untouched (no-op), or to apply?"""
    conn.execute(_DDL)
    hash_ = digest(claim)
    current = conn.execute(f"SELECT hash, schema_version FROM main.{TABLE} ORDER BY seq DESC LIMIT 1").fetchone()
    if current is not None and current[0] == hash_:
        return Seen(hash_, current[1] if current[1] == schema_version(conn) else None)
    seen = conn.execute(f"SELECT 1 FROM main.{TABLE} WHERE hash = ?", (hash_,)).fetchone()
    return Seen(hash_, _OLDER if seen else None)


def record(conn: apsw.Connection, seen: Seen) -> int:
    """The claim is now current, at the schema version it leaves; that version is returned."""
    version = schema_version(conn)
    conn.execute(f"INSERT INTO main.{TABLE} (hash, schema_version) VALUES (?, ?) "
                 "ON CONFLICT (hash) DO UPDATE SET schema_version = excluded.schema_version", (seen.hash, version))
    return version
