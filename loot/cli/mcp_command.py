"""`loot mcp`: serve one database to an agent as Model Context Protocol tools (docs/mcp.md)."""

from __future__ import annotations

import argparse
import asyncio
import os

from loot.cli import target
from loot.cli.sql import add_router_argument

DEFAULT_PORT = 7090


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port (0 to 65535)")
    return int(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_router_argument(parser)
    target.add_arguments(parser, token_flag=False)
    parser.add_argument("--token", default=os.environ.get("LOOT_TOKEN"),
                        help="serve the database this ready token names (env LOOT_TOKEN); --key, --db, --tenant "
                             "and the claim flags are then unused. A read-only token gets no write tools")
    parser.add_argument("--transport", choices=("stdio", "http"), default="stdio",
                        help="stdio (default: the MCP client starts this command) or streamable HTTP")
    parser.add_argument("--host", default="127.0.0.1",
                        help="HTTP: address to listen on (default 127.0.0.1; whoever reaches it acts with the token)")
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT,
                        help=f"HTTP: port (default {DEFAULT_PORT}; 0 picks a free one); the URL is printed on stderr")
    parser.add_argument("--max-rows", type=_positive, default=100, help="rows a tool returns at most (default 100)")
    parser.add_argument("--max-chars", type=_positive, default=50_000,
                        help="characters of JSON a tool returns at most; rows past it are cut (default 50000)")


def run(args: argparse.Namespace) -> None:
    if args.destroy:
        raise target.UserError("--destroy would delete the database after the first tool call; `loot mcp` serves it")
    try:  # the `mcp` extra is optional: `loot` runs without it
        from loot.cli import mcp_server
    except ImportError as missing:
        raise target.UserError(f"`loot mcp` needs the MCP SDK ({missing.name} is missing): "
                               "pip install 'loot[mcp]'") from None
    asyncio.run(mcp_server.serve(args))
