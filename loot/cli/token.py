"""`loot token`: mint a token for one database from flags and files."""

from __future__ import annotations

import argparse

from loot.cli import target
from loot.tokens import mint


def add_arguments(parser: argparse.ArgumentParser) -> None:
    target.add_arguments(parser, token_flag=False)


def run(args: argparse.Namespace) -> None:
    name, tenant = target.require_database(args)
    print(mint(target.load_key(args.key), name, tenant, ttl=args.ttl, **target.token_claims(args)))
