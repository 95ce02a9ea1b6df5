"""`loot databases` and `loot census`: an account's databases across the cluster (docs/fleet.md).

Both sign an account token (`scope: account`) with --key, which must be the account's own key."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone

from google.protobuf import json_format

from loot.cli.sql import add_router_argument, connect
from loot.cli.target import load_key


def add_databases_arguments(parser: argparse.ArgumentParser) -> None:
    _add_common(parser)
    parser.add_argument("--tenant-prefix", default="", help="only tenants starting with this")
    parser.add_argument("--page-size", type=int, default=0, help="databases fetched per call (1-1000, default 100)")
    parser.add_argument("--json", action="store_true", help="one JSON object per database, one per line")


def add_census_arguments(parser: argparse.ArgumentParser) -> None:
    _add_common(parser)
    parser.add_argument("--json", action="store_true", help="print the CensusResponse as JSON")


def _add_common(parser: argparse.ArgumentParser) -> None:
    add_router_argument(parser)
    parser.add_argument("--key", default="loot-key.json", help="the account's own private key file (default "
                        "loot-key.json); a certified app key cannot sign account tokens")
    parser.add_argument("--db", default="", help="only databases of this name")


def databases(args: argparse.Namespace) -> None:
    with connect(args) as client:
        account = client.account(load_key(args.key))
        for info in account.databases(args.db, args.tenant_prefix, args.page_size):
            if args.json:
                print(json.dumps(json_format.MessageToDict(info, preserving_proto_field_name=True)), flush=True)
            else:
                print(f"{info.name}\t{info.tenant}\t{info.bytes}\t{_when(info.last_write)}\t"
                      f"{info.schema_hash[:12] or '-'}", flush=True)


def census(args: argparse.Namespace) -> None:
    with connect(args) as client:
        answer = client.account(load_key(args.key)).census(args.db)
    if args.json:
        print(json_format.MessageToJson(answer, preserving_proto_field_name=True))
        return
    for group in answer.groups:
        print(f"{group.name}\t{group.schema_hash[:12] or '-'}\t{group.databases} databases\t{group.bytes} bytes")
    print(f"total\t{answer.databases} databases\t{answer.bytes} bytes")


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
