"""How long a shard keeps the files it handed off (DATA/handed-off/, loot/shard/handoff/files.py).

They are kept for recovery only, never served: each file (a database and any WAL or
shared-memory file retired with it) is deleted once it has been there longer than
`--keep-handed-off` days, looked at when the shard starts and every hour after
(docs/rebalancing.md). Age is the file's modification time, which retiring sets.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from pathlib import Path

from loot.settings import add_flag

SWEEP_EVERY = 3600.0
DAY = 86400.0
log = logging.getLogger("loot.handoff")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_flag(parser, "--keep-handed-off", default=7.0, type=float,
             help="days the files of databases handed off to another shard are kept in DATA/handed-off "
                  "for recovery, then deleted (looked at on start and hourly; 0 = at the next look)")


def check(days: float) -> None:
    if not days >= 0:  # also refuses nan
        raise SystemExit("--keep-handed-off must be 0 days or more")


def sweep(directory: Path, keep_seconds: float, now: float | None = None) -> list[Path]:
    """Delete the files in `directory` older than `keep_seconds`; return them."""
    cutoff = (time.time() if now is None else now) - keep_seconds
    deleted = []
    for path in sorted(directory.glob("*")) if directory.is_dir() else []:
        try:
            if path.is_file() and path.stat().st_mtime <= cutoff:
                path.unlink()
                deleted.append(path)
        except FileNotFoundError:  # deleted meanwhile by hand
            pass
    return deleted


async def keep_sweeping(directory: Path, days: float) -> None:
    """`sweep` off the event loop now and every SWEEP_EVERY seconds, until cancelled."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            deleted = await loop.run_in_executor(None, sweep, directory, days * DAY)
        except OSError as error:  # a disk problem: say so, try again at the next look
            log.warning("could not delete old handed-off files in %s: %s", directory, error)
        else:
            if deleted:
                log.info("deleted %d handed-off file(s) older than %g days from %s", len(deleted), days, directory)
        await asyncio.sleep(SWEEP_EVERY)
