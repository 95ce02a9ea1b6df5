"""`loot router`: run one router process."""

from __future__ import annotations

import argparse
import asyncio

from loot.membership import parse_members
from loot.serving import add_operations_flags, new_server, serve
from loot.secret import cluster_secret
from loot.settings import add_flag
from loot.v1 import database_pb2, database_pb2_grpc
from router.service import DatabaseService
from router.shards import Shards


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_flag(parser, "--shards", help="membership: every shard's name=host:port, comma-separated")
    add_flag(parser, "--host", default="127.0.0.1", help="address to listen on")
    add_flag(parser, "--port", default=7070, type=int, help="port to listen on (0 = any free port)")
    add_flag(parser, "--forward-timeout", default=30.0, type=float,
             help="longest wait for a shard, in seconds, when the client sets no deadline")
    add_operations_flags(parser)


async def run(args: argparse.Namespace) -> None:
    if not args.shards:
        raise SystemExit("loot router needs --shards (or LOOT_SHARDS): name=host:port,...")
    shards = Shards(parse_members(args.shards))
    server = new_server()
    database_pb2_grpc.add_DatabaseServicer_to_server(DatabaseService(shards, cluster_secret(), args.forward_timeout), server)
    service = database_pb2.DESCRIPTOR.services_by_name["Database"].full_name
    await serve(server, args, role="router", name="router", services=[service], on_stop=shards.close)


def main(args: argparse.Namespace) -> None:
    asyncio.run(run(args))
