"""`loot shard`: run one shard process."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from loot.internal.v1 import shard_pb2, shard_pb2_grpc
from loot.membership import add_membership_flags, membership_from_arguments
from loot.observability.metrics import watch_databases
from loot.serving import add_operations_flags, new_server, serve
from loot.secret import accepted_secrets
from loot.settings import add_flag
from shard import limits as shard_limits
from shard.cluster_auth import ClusterSecretInterceptor
from shard.databases import Databases
from shard.service import ShardService
from shard.storage import SPARE_COPIES, Storage


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_flag(parser, "--name", required=False, help="this shard's stable name, e.g. shard-0")
    add_membership_flags(parser, "every shard's name[=host:port]")
    add_flag(parser, "--data", default="./loot-data/shard", help="directory holding this shard's databases")
    add_flag(parser, "--host", default="127.0.0.1", help="address to listen on")
    add_flag(parser, "--port", default=7071, type=int, help="port to listen on (0 = any free port)")
    add_operations_flags(parser)
    shard_limits.add_arguments(parser)


async def run(args: argparse.Namespace) -> None:
    if not args.name:
        raise SystemExit("loot shard needs --name (or LOOT_NAME)")
    membership = membership_from_arguments(args, "shard")
    # A fixed list can never come to name it; a file can, at a later epoch (a shard being added).
    if args.name not in membership.current.shards and membership.path is None:
        raise SystemExit(f"--name {args.name!r} is not in the shard list {', '.join(membership.current.shards)}")
    limits = shard_limits.from_arguments(args)
    databases = Databases(Storage(Path(args.data), limits, SPARE_COPIES), limits)
    watch_databases(databases.stats)
    server = new_server(ClusterSecretInterceptor(*accepted_secrets()), return_request_id=False)
    shard_pb2_grpc.add_ShardServicer_to_server(ShardService(args.name, membership, databases), server)
    membership.start_watching(args.membership_poll)
    service = shard_pb2.DESCRIPTOR.services_by_name["Shard"].full_name
    await serve(server, args, role="shard", name=args.name, services=[service], on_stop=databases.close)


def main(args: argparse.Namespace) -> None:
    asyncio.run(run(args))
