"""`loot sql`: run one statement through a router and print the result."""

from __future__ import annotations

import argparse
import sys

import grpc

from loot.cli.keys import add_database_arguments, token_for
from loot.client import Client, rows
from loot.status import error_info


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--router", default="127.0.0.1:7070", help="router address (default 127.0.0.1:7070)")
    add_database_arguments(parser)
    parser.add_argument("sql", help="one SQL statement")
    parser.add_argument("params", nargs="*", help="positional parameters (sent as text)")


def run(args: argparse.Namespace) -> None:
    with Client(args.router) as client:
        try:
            response = client.execute(token_for(args), args.sql, args.params)
        except grpc.RpcError as error:
            info = error_info(error)
            reason = f" [{info.reason}]" if info else ""
            sys.exit(f"loot: {error.code().name}{reason}: {error.details()}")
    print_result(response.result)


def print_result(result) -> None:
    names = [column.name for column in result.columns]
    table = [[_show(value) for value in row] for row in rows(result)]
    if names:
        widths = [max(len(cell) for cell in column) for column in zip(names, *table)]
        print(" | ".join(name.ljust(width) for name, width in zip(names, widths)))
        print("-+-".join("-" * width for width in widths))
        for row in table:
            print(" | ".join(cell.ljust(width) for cell, width in zip(row, widths)))
    print(f"({len(table)} rows read, {result.rows_written} written)")


def _show(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return "x'" + value.hex() + "'"
    return str(value)
