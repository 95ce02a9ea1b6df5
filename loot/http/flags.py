"""The HTTP port's settings, and starting it when they ask. Light to import: a server loads the HTTP
layer itself (loot/http/server.py) only when `--http-port` turns it on, so a gRPC-only process starts
as fast as before."""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

import grpc

from loot.http.cors import origin_patterns
from loot.settings import add_flag

if TYPE_CHECKING:
    from loot.http.server import HttpPort

_HTTP_LINE = re.compile(r"^loot \w+ \S+ http on (?P<url>\S+)$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_flag(parser, "--http-port", type=int,
             help="also serve loot.v1.Database over HTTP on this port: Connect (JSON, binary) and gRPC-Web, "
                  "and the playground at / (0 = any free port; unset = off; docs/http.md)")
    add_flag(parser, "--cors-origin", type=origin_patterns, action="append",
             help="web origins whose pages may call the HTTP port: scheme://host[:port], scheme://host:* (any port) "
                  "or *; repeat or comma-separate (default: loopback pages when --host is loopback, else none)")


def http_line(role: str, name: str, url: str) -> str:
    return f"loot {role} {name} http on {url}"


def parse_http(line: str) -> str | None:
    """The HTTP port's URL if `line` is a server's HTTP line."""
    match = _HTTP_LINE.match(line.strip())
    return match["url"] if match else None


async def start_http(handlers: Mapping[str, grpc.RpcMethodHandler], args: argparse.Namespace, role: str,
                     name: str) -> HttpPort | None:
    """Serve `handlers` (the process's loot.v1.Database gRPC handlers, by method name) on `--http-port` if it is
    set, and print the HTTP line; None when it is not. Stop it with its `stop`, then await its `stopped`."""
    if args.http_port is None:
        return None
    from loot.http.server import HttpPort

    port = HttpPort(handlers, args, f"loot {role}" if name == role else f"loot {role} {name}")
    print(http_line(role, name, await port.start()), flush=True)
    return port
