"""`loot mcp`'s server: one database's tools (loot/cli/mcp_tools.py) on the official MCP SDK's low-level
Server, over stdio or streamable HTTP. Imported only when `loot mcp` runs: the `mcp` extra is optional."""

from __future__ import annotations

import argparse
import socket
import sys
from typing import Any

import mcp_types as types
import uvicorn
from mcp import MCPError
from mcp.server import Server
from mcp.server.stdio import stdio_server

from loot import __version__
from loot.cli import target
from loot.cli.mcp_results import Bounds
from loot.cli.mcp_tools import DatabaseTools
from loot.cli.sql import connect
from loot.errors import LootError
from loot.sdk.client import AsyncClient
from loot.tokens.verify import verified_payload

PATH = "/mcp"


async def serve(args: argparse.Namespace) -> None:
    """Check the database answers (a bad token or an unreachable router stops here, with its error),
    then serve it until the client goes (stdio) or the process is stopped (HTTP)."""
    async with connect(args, AsyncClient) as client:
        db = target.open_database(client, args)
        await db.describe()
        name, tenant, readonly = _served(args)
        tools = DatabaseTools(db, readonly=readonly, bounds=Bounds(args.max_rows, args.max_chars))
        server = _server(tools, name, tenant, readonly)
        if args.transport == "stdio":
            async with stdio_server() as (read, write):
                await server.run(read, write, server.create_initialization_options())
        else:
            await _serve_http(server, args.host, args.port, f"{name}/{tenant}")


def _served(args: argparse.Namespace) -> tuple[str, str, bool]:
    """The database's name and tenant, and whether its token is read-only. A ready token is read only
    once the router accepted it: then its signature and claims hold."""
    if not args.token:
        return args.db, args.tenant, args.readonly
    payload = verified_payload(args.token)[1]
    return payload["db"]["name"], payload["db"]["tenant"], payload.get("readonly") is True


def _server(tools: DatabaseTools, name: str, tenant: str, readonly: bool) -> Server[Any]:
    async def list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        try:
            return types.ListToolsResult(tools=await tools.list())
        except LootError as error:  # e.g. the token expired: said as such, not as "Internal server error"
            raise MCPError(types.INTERNAL_ERROR, str(error), {"reason": error.reason}) from None

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        return await tools.call(params.name, params.arguments or {})

    access = "read-only: describe and query" if readonly else "describe, query, execute and per-table writes"
    instructions = (f"One Loot database, {name!r} of tenant {tenant!r}: SQLite. Tools ({access}). Call describe "
                    "first to see its tables, and the filters and rules that bound what this token sees and writes.")
    return Server("loot", version=__version__, instructions=instructions, on_list_tools=list_tools,
                  on_call_tool=call_tool)


async def _serve_http(server: Server[Any], host: str, port: int, database: str) -> None:
    # Stateless: every request stands alone (the tools keep no session state), so nothing expires or piles up.
    app = server.streamable_http_app(streamable_http_path=PATH, stateless_http=True, host=host)
    try:
        listener = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
    except OSError as error:
        raise target.UserError(f"cannot listen on {host} port {port}: {error.strerror or error}") from None
    bound = listener.getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    print(f"loot mcp: serving {database} over streamable HTTP at http://{shown_host}:{bound}{PATH}",
          file=sys.stderr, flush=True)
    await uvicorn.Server(uvicorn.Config(app, log_level="warning")).serve(sockets=[listener])
