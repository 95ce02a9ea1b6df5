"""Operator commands' way to one database's owner shard: the cluster's shards and its secret.

Either a running `loot up`'s data directory (its membership file and cluster secret), or the
shards named with --shards name=host:port,... and the secret in $LOOT_CLUSTER_SECRET; over TLS with
the --shard-tls-* settings a router takes (in a shard's pod, its environment has them). A database
is named by account, name and tenant (account: --account, else the --key file's) or by --id.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

import grpc

from loot import settings, tls
from loot.cli.target import UserError, load_key
from loot.grpc_options import GRPC_OPTIONS
from loot.ids import database_id, is_database_id
from loot.internal.v1 import shard_pb2
from loot.membership import parse_members, parse_membership
from loot.ring import Ring
from loot.secret import MIN_LENGTH, SECRET_HEADER


@dataclass(frozen=True)
class Shards:
    members: dict[str, str]
    secret: str
    credentials: grpc.ChannelCredentials | None = None  # TLS to the shards; None: plaintext

    def owner(self, database_id: str) -> str:
        """The address of the shard owning the database."""
        return self.members[Ring(self.members).owner(database_id)]

    def channel(self, address: str) -> grpc.Channel:
        if self.credentials is None:
            return grpc.insecure_channel(address, options=GRPC_OPTIONS)
        return grpc.secure_channel(address, self.credentials, options=GRPC_OPTIONS)

    @property
    def metadata(self) -> tuple[tuple[str, str]]:
        return ((SECRET_HEADER, self.secret),)


@dataclass(frozen=True)
class Named:
    """A database: its id, and who it belongs to when known (needed to create one)."""

    database_id: str
    row: shard_pb2.CatalogRow | None = None


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=Path("loot-data"),
                        help="a running `loot up`'s data directory: its shards and cluster secret (default ./loot-data)")
    parser.add_argument("--shards", default="",
                        help="instead of --data: every shard's name=host:port, comma-separated, as the routers "
                             "have them; the cluster secret from $LOOT_CLUSTER_SECRET")
    tls.add_shard_client_flags(parser)


def add_database_arguments(parser: argparse.ArgumentParser, prefix: str = "", *, by_id: bool = True) -> None:
    """--account/--db/--tenant (or --id) naming a database; `prefix` for a second one (--to-tenant)."""
    if by_id:
        parser.add_argument("--id", help="the database's id (instead of --account/--db/--tenant)")
    parser.add_argument("--account", help="the account (a key's thumbprint); default: the --key file's")
    parser.add_argument("--key", default="loot-key.json", help="key file whose account is meant (default loot-key.json)")
    parser.add_argument("--db", help="the database's name")
    parser.add_argument("--tenant", help="the tenant")


def shards(args: argparse.Namespace) -> Shards:
    settings.resolve(args, "router")  # the --shard-tls-* settings, from the environment as a router takes them
    credentials = tls.shard_channel_credentials(args)
    if args.shards:
        secret = os.environ.get("LOOT_CLUSTER_SECRET", "")
        if len(secret) < MIN_LENGTH:
            raise UserError("--shards needs the cluster secret in LOOT_CLUSTER_SECRET")
        try:
            return Shards(parse_members(args.shards), secret, credentials)
        except ValueError as error:
            raise UserError(str(error)) from None
    membership, secret = args.data / "membership.json", args.data / "cluster-secret"
    if not membership.exists() or not secret.exists():
        raise UserError(f"{args.data} is not the data directory of a `loot up` (no membership.json or "
                        "cluster-secret); give --data DIR, or --shards with LOOT_CLUSTER_SECRET")
    try:
        members = parse_membership(membership.read_text()).shards
    except ValueError as error:
        raise UserError(f"{membership}: {error}") from None
    return Shards(members, secret.read_text().strip(), credentials)


def named(args: argparse.Namespace, tenant: str | None = None) -> Named:
    """The database the arguments name; `tenant` replaces --tenant (a branch's new tenant)."""
    if getattr(args, "id", None) and tenant is None:
        if not is_database_id(args.id):
            raise UserError(f"--id {args.id!r} is not a database id (64 hex digits)")
        return Named(args.id)
    tenant = tenant if tenant is not None else args.tenant
    if not args.db or tenant is None:
        raise UserError("name the database with --db and --tenant (and --account or --key), or with --id")
    account = args.account or load_key(args.key).account
    return Named(database_id(account, args.db, tenant),
                 shard_pb2.CatalogRow(account=account, name=args.db, tenant=tenant))
