"""`loot`: run a local cluster, single services, and talk to a database."""

from __future__ import annotations

import argparse
import sys

from loot import settings
from loot.cli import backup, describe, fleet, health, keys, mcp_command, restore_export, restore_shard, scale, shell, sql, token, up
from loot.cli.target import UserError
from loot.errors import LootError
from loot.cli.local_cluster import exit_with_supervisor
from loot.router import server as router_server
from loot.node import server as shard_server

COMMANDS = {
    # name: (help, add_arguments, run)
    "up": ("start a local cluster (a router and N shards) in the foreground", up.add_arguments, up.run),
    "scale": ("change the number of shards of a running `loot up`, moving databases online",
              scale.add_arguments, scale.run),
    "keygen": ("create a signing key (a key pair is an account)", keys.add_keygen_arguments, keys.keygen),
    "token": ("mint a token for one database", token.add_arguments, token.run),
    "sql": ("run one SQL statement through a router", sql.add_arguments, sql.run),
    "shell": ("interactive SQL on one database", shell.add_arguments, shell.run),
    "describe": ("show a database's tables, indexes, views, filters and rules", describe.add_arguments, describe.run),
    "mcp": ("serve one database to an agent as MCP tools (describe, query, writes), over stdio or HTTP",
            mcp_command.add_arguments, mcp_command.run),
    "databases": ("list your account's databases across the cluster (name, tenant, bytes, last write, schema)",
                  fleet.add_databases_arguments, fleet.databases),
    "census": ("count your account's databases and bytes per name and schema hash",
               fleet.add_census_arguments, fleet.census),
    "rollout": ("apply a schema claim to every database of a name now, canary first, with progress",
                fleet.add_rollout_arguments, fleet.rollout),
    "destroy": ("destroy listed databases of a name for good (explicit and confirmed)",
                fleet.add_destroy_arguments, fleet.destroy),
    "router": ("run one router process", router_server.add_arguments, router_server.main),
    "shard": ("run one shard process", shard_server.add_arguments, shard_server.main),
    "health": ("probe a router or shard's gRPC health (exit 0 when serving)", health.add_arguments, health.run),
    "backup": ("copy a shard's databases consistently while it runs", backup.add_arguments, backup.run),
    "restore": ("restore one database from its replica, latest or as of a time, in place or as a branch",
                restore_export.add_restore_arguments, restore_export.restore),
    "restore-shard": ("restore every database of a stopped shard that lost its disk, from the replica",
                      restore_shard.add_arguments, restore_shard.run),
    "export": ("write one database to a plain SQLite file, consistently", restore_export.add_export_arguments,
               restore_export.export),
    "import": ("make a new database from a SQLite file, its schema checked as a claim's",
               restore_export.add_import_arguments, restore_export.import_),
}


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="loot",
        description="A database per tenant: SQLite behind gRPC, authorised by self-issued JWTs.",
        epilog="Start with `loot up`, then `loot keygen` and `loot sql` in another terminal. `loot COMMAND --help` for details.",
    )
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, add_arguments, _) in COMMANDS.items():
        add_arguments(commands.add_parser(name, help=help_text, description=help_text[0].upper() + help_text[1:] + "."))
    return root


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.command in settings.ROLES:
        exit_with_supervisor()
        settings.resolve(args, args.command)
    try:
        COMMANDS[args.command][2](args)
    except (UserError, LootError) as error:
        sys.exit(f"loot: {error}")
    except KeyboardInterrupt:
        sys.exit(130)
