"""Claims built into pristine in-memory databases, shared by every database that gets the same claim.

A deployment hands one claim to many tenants; building and reading it once
per shard, not once per tenant, keeps a first apply close to the cost of
creating the tables themselves. Each pristine database is read under its own
lock (an APSW connection serves one thread at a time) and never written again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

from loot.shard.schema.inspect import Catalog
from loot.shard.schema.validate import build

_LIMIT = 16
_built: OrderedDict[str, tuple[threading.Lock, Catalog]] = OrderedDict()
_guard = threading.Lock()


@contextmanager
def claimed(claim: str, digest: str) -> Iterator[Catalog]:
    """The claim's catalog, for this thread alone while the block runs; Fault if the claim is invalid."""
    with _guard:
        found = _built.get(digest)
        if found is not None:
            _built.move_to_end(digest)
    if found is None:
        found = threading.Lock(), Catalog(build(claim))
        with _guard:
            _built[digest] = found
            while len(_built) > _LIMIT:
                _built.popitem(last=False)  # still-running readers keep theirs alive; the last one closes it
    lock, catalog = found
    with lock:
        yield catalog
