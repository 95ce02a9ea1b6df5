"""`loot`: run a local cluster, single services, and talk to a database."""

from __future__ import annotations

import argparse
import sys

from loot import settings
from loot.cli import backup, health, keys, sql, up
from loot.local_cluster import exit_with_supervisor
from router import server as router_server
from shard import server as shard_server


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="loot", description="A database per tenant: SQLite behind gRPC, authorised by self-issued JWTs.")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up.add_arguments(commands.add_parser("up", help="start a local cluster (a router and N shards) in the foreground"))
    keys.add_keygen_arguments(commands.add_parser("keygen", help="create a signing key (a key pair is an account)"))
    keys.add_token_arguments(commands.add_parser("token", help="mint a token for one database"))
    sql.add_arguments(commands.add_parser("sql", help="run one SQL statement through a router"))
    router_server.add_arguments(commands.add_parser("router", help="run one router"))
    shard_server.add_arguments(commands.add_parser("shard", help="run one shard"))
    health.add_arguments(commands.add_parser("health", help="probe a router or shard's gRPC health (exit 0 when serving)"))
    backup.add_arguments(commands.add_parser("backup", help="copy a shard's databases consistently while it runs"))
    return root


HANDLERS = {"up": up.run, "keygen": keys.keygen, "token": keys.token, "sql": sql.run, "router": router_server.main,
            "shard": shard_server.main, "health": health.run, "backup": backup.run}


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.command in settings.ROLES:
        exit_with_supervisor()
        settings.resolve(args, args.command)
    try:
        HANDLERS[args.command](args)
    except KeyboardInterrupt:
        sys.exit(130)
