"""`loot shard`: one shard process; with --public-port it serves the public API too (loot/node/one_hop.py)."""

from __future__ import annotations

import argparse
import asyncio
import functools

from loot import tls
from loot.http import flags as http
from loot.membership import MembershipSource
from loot.secret import SECRET_HEADER, cluster_secret
from loot.serving import Beside, new_server
from loot.settings import add_flag
from loot.router import server as router_server
from loot.router.service import SERVICE
from loot.router.shards import Shards
from loot.shard import server as shard_server
from loot.shard.service import ShardService
from loot.node.one_hop import OneHopService


def add_arguments(parser: argparse.ArgumentParser) -> None:
    shard_server.add_arguments(parser)
    add_flag(parser, "--public-port", type=int,
             help="also serve the public loot.v1.Database API on this port (0 = any free port; unset = off): "
                  "calls for this shard's databases run here in one hop, others are forwarded as a router does. "
                  "Takes the router's admission flags below; the internal port keeps requiring the cluster secret")
    router_server.add_admission_flags(parser)


async def public_port(args: argparse.Namespace, shard: ShardService, membership: MembershipSource) -> Beside:
    """The public API beside the shard's internal port, with a router's view of the other shards; over
    HTTP too with --http-port, as a router serves it (loot/http/)."""
    shards = Shards(membership, (SECRET_HEADER, cluster_secret()), tls.shard_channel_credentials(args),
                    require_addresses=False)  # a shard may know only names, or its peers' addresses may come later
    service = router_server.database_service(args, f"shard {args.name}", shards, OneHopService, local=shard)
    server = new_server(args.reuse_port)
    http_port = await http.start_http(service.add_to(server), args, "shard", args.name)
    on_stopping, on_stop = http.stopped_with(http_port, lambda: service.stopping(args.shutdown_grace), shards.close)
    return Beside(server, args.public_port, [SERVICE], on_stopping=on_stopping, on_stop=on_stop)


def main(args: argparse.Namespace) -> None:
    if args.http_port is not None and args.public_port is None:
        raise SystemExit("loot shard: --http-port serves the public API over HTTP, so it needs --public-port too")
    public = None if args.public_port is None else functools.partial(public_port, args)
    asyncio.run(shard_server.run(args, public))
