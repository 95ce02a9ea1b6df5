"""`loot databases`, `loot census`, `loot rollout` and `loot destroy`: an account's databases across
the cluster (docs/fleet.md).

Each signs an account token (`scope: account`) with --key, which must be the account's own key."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from google.protobuf import json_format

from loot.cli.sql import add_router_argument, connect
from loot.cli.target import UserError, load_key
from loot.router.destroy_list import confirmation


def add_databases_arguments(parser: argparse.ArgumentParser) -> None:
    _add_common(parser)
    parser.add_argument("--tenant-prefix", default="", help="only tenants starting with this")
    parser.add_argument("--page-size", type=int, default=0, help="databases fetched per call (1-1000, default 100)")
    parser.add_argument("--json", action="store_true", help="one JSON object per database, one per line")


def add_census_arguments(parser: argparse.ArgumentParser) -> None:
    _add_common(parser)
    parser.add_argument("--json", action="store_true", help="print the CensusResponse as JSON")


def add_rollout_arguments(parser: argparse.ArgumentParser) -> None:
    _add_common(parser)
    schema = parser.add_mutually_exclusive_group(required=True)
    schema.add_argument("--schema", help="the schema claim to apply (as a token's `schema`)")
    schema.add_argument("--schema-file", type=Path, help="file holding the schema claim")
    parser.add_argument("--canary", type=int, default=1, help="databases converged first, before the rest (default 1)")
    parser.add_argument("--concurrency", type=int, default=0, help="databases converged at once per shard (1-64, "
                        "default 4)")


def add_destroy_arguments(parser: argparse.ArgumentParser) -> None:
    _add_common(parser)
    parser.add_argument("tenants", nargs="+", metavar="TENANT", help="each tenant whose database of --db goes")
    parser.add_argument("--confirm", default="", help='"destroy N databases of NAME", as asked; without it, '
                        "a terminal asks you to type it")


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


def rollout(args: argparse.Namespace) -> None:
    if not args.db:
        raise UserError("say which databases: --db NAME (every tenant of that name gets the claim)")
    claim = args.schema_file.read_text() if args.schema_file else args.schema
    bar = sys.stdout.isatty()  # a progress bar on a terminal, plain lines otherwise (logs, pipes)
    with connect(args) as client:
        steps = client.account(load_key(args.key)).rollout(args.db, claim, canary=args.canary,
                                                           concurrency=args.concurrency)
        last = None
        for last in steps:
            line = (f"{last.phase}: {last.converged + last.already}/{last.total} on the claim "
                    f"({last.already} already){' ' + last.tenant if last.tenant else ''}")
            print(f"\r{line:<78}" if bar else line, end="" if bar else "\n", flush=True)
    if bar:
        print()
    if last is not None and last.phase == "refused":
        raise UserError(f"rollout stopped: tenant {last.tenant!r} refused the claim [{last.refusal_reason}]: "
                        f"{last.refusal_message}")


def destroy(args: argparse.Namespace) -> None:
    if not args.db:
        raise UserError("say which databases: --db NAME and the tenants, one by one")
    expected = confirmation(args.db, len(args.tenants))
    confirm = args.confirm
    if not confirm and sys.stdin.isatty():
        confirm = input(f"This destroys {len(args.tenants)} databases for good. Type {expected!r}: ")
    if confirm != expected:
        raise UserError(f"nothing destroyed: confirm with --confirm {expected!r}")
    with connect(args) as client:
        answer = client.account(load_key(args.key)).destroy(args.db, args.tenants, confirm)
    for tenant in answer.destroyed:
        print(f"destroyed\t{args.db}\t{tenant}")
    for tenant in answer.missing:
        print(f"missing\t{args.db}\t{tenant}")


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
