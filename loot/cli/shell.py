"""`loot shell`: an interactive SQL prompt on one database (multi-line, with history)."""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from loot.cli import describe, output, target
from loot.cli.sql import add_router_argument, connect
from loot.errors import LootError

HISTORY = Path(os.environ.get("LOOT_HISTORY", Path.home() / ".loot_history"))
HELP = """End each statement with ';' (it may span lines).
  .describe   tables, indexes, views, triggers, filters and rules
  .tables     table names
  .quit       leave (or Ctrl-D)"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_router_argument(parser)
    target.add_arguments(parser)


def run(args: argparse.Namespace) -> None:
    interactive = sys.stdin.isatty()
    if interactive:
        _enable_history()
        print(f"connected to {args.router}; .help for help")
    with connect(args) as client:
        db = target.open_database(client, args)
        for statement in _statements(_prompt if interactive else _piped):
            _run_one(db, statement)


def _run_one(db, statement: str) -> None:
    try:
        if statement in (".describe", ".tables"):
            description = db.describe()
            print(describe.text(description) if statement == ".describe" else "\n".join(t.name for t in description.tables))
        elif statement == ".help":
            print(HELP)
        else:
            print(output.table(db.execute(statement)))
    except LootError as error:
        print(f"error: {error}", file=sys.stderr)


def _statements(read_line: Callable[[bool], str | None]) -> Iterator[str]:
    """Complete statements and dot commands; read_line(continuing) returns None at the end."""
    pending = ""
    while (line := read_line(bool(pending))) is not None:
        if not pending and line.strip().startswith("."):
            if line.strip() in (".quit", ".exit"):
                return
            yield line.strip()
            continue
        pending += line + "\n"
        if sqlite3.complete_statement(pending):
            yield pending.strip()
            pending = ""
    if pending.strip():
        yield pending.strip()


def _prompt(continuing: bool) -> str | None:
    try:
        return input("...> " if continuing else "loot> ")
    except EOFError:
        print()
        return None


def _piped(continuing: bool) -> str | None:
    line = sys.stdin.readline()
    return line.rstrip("\n") if line else None


def _enable_history() -> None:
    try:
        import atexit
        import readline
    except ImportError:
        return
    try:
        readline.read_history_file(HISTORY)
    except OSError:
        pass
    atexit.register(readline.write_history_file, HISTORY)
