"""How one of the request's own statements is run: its text rewritten so its expressions never see a
row its filters hide (docs/access.md, "How it is enforced").

- A leakproof statement (leakproof.py) reads through the fast views, its
  UPDATE or DELETE gets the row-only filters first in its WHERE: SQLite may
  run its terms on hidden rows, which tells nothing, and uses every index.
- Any other reads through the barrier views; its UPDATE or DELETE runs its own
  WHERE and SET only on rows the filters let it see (guard.py).
- Either way each upsert's DO UPDATE runs only on a visible conflicting row.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from loot.shard.access.guard import filter_rows_first, guard_upserts, guard_write
from loot.shard.access.install import Installed
from loot.shard.access.leakproof import leakproof
from loot.shard.access.rewrite import retarget, to_fast_views, write_target
from loot.shard.sql_text import tokens


@dataclass(frozen=True)
class Planned:
    sql: str
    # The filtered table it writes (lower-cased), if any.
    target: str | None
    # Whether it writes at all (SQLite's foreign-key checks then read key columns).
    writes: bool
    # Whether it reads through the fast views.
    fast: bool


_CACHED_SQL_LENGTH = 4096


def plan(sql: str, installed: Installed) -> Planned:
    if len(sql) <= _CACHED_SQL_LENGTH:  # the same few statements come again and again; huge ones rarely
        return _cached_plan(sql, installed)
    return _plan(sql, installed)


@functools.lru_cache(maxsize=1024)
def _cached_plan(sql: str, installed: Installed) -> Planned:
    return _plan(sql, installed)


def _plan(sql: str, installed: Installed) -> Planned:
    rewritten, target = retarget(sql, installed.filtered, restricted=True)
    filters = installed.filters.get(target or "")
    fast = to_fast_views(rewritten, frozenset(installed.filters)) if leakproof(sql) else None
    if fast is not None:
        rewritten = fast
        if filters is not None and filters.row_only:
            rewritten = filter_rows_first(rewritten, filters.condition)
    elif filters is not None:
        rewritten = guard_write(rewritten, filters)
    if filters is not None:
        rewritten = guard_upserts(rewritten, filters)
    return Planned(rewritten, target, write_target(tokens(sql)) is not None, fast is not None)
