"""`loot sql`: run one statement through a router and print the result."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from loot.cli import output, target
from loot.sdk.client import AsyncClient, Client


def add_router_argument(parser: argparse.ArgumentParser) -> None:
    default = os.environ.get("LOOT_ROUTER", "127.0.0.1:7070")
    parser.add_argument("--router", default=default, help=f"router address (env LOOT_ROUTER, default {default})")
    parser.add_argument("--tls-ca", type=Path, help="PEM CA that signed the router's certificate: connect over TLS")


def connect(args: argparse.Namespace, client_type: type[Client | AsyncClient] = Client) -> Client | AsyncClient:
    """A client (Client, or AsyncClient) for --router, over TLS when --tls-ca is given."""
    return client_type(args.router, root_certificates=args.tls_ca.read_bytes() if args.tls_ca else None)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_router_argument(parser)
    target.add_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("sql", help="one SQL statement")
    parser.add_argument("params", nargs="*", help="positional parameters, bound as text")


def run(args: argparse.Namespace) -> None:
    with connect(args) as client:
        result = target.open_database(client, args).execute(args.sql, args.params)
    print(output.as_json(result) if args.json else output.table(result))
