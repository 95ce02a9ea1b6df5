"""`loot keygen` and `loot token`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from loot.tokens import Key, mint
from loot.tokens.keys import ALGORITHMS


def add_keygen_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="loot-key.json", help="where to write the private key (default loot-key.json)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing key file")
    parser.add_argument("--alg", choices=ALGORITHMS, default="ES256",
                        help="ES256 (P-256, the default) or EdDSA (Ed25519)")


def keygen(args: argparse.Namespace) -> None:
    path = Path(args.out)
    if path.exists() and not args.force:
        sys.exit(f"loot: {path} exists; pass --force to replace it (its databases stay with the old key)")
    key = Key.generate(args.alg)
    key.save(path)
    print(f"wrote {path}; {key.alg} account {key.account}")


def add_token_arguments(parser: argparse.ArgumentParser) -> None:
    add_database_arguments(parser)
    parser.add_argument("--ttl", type=int, default=900, help="seconds until the token expires (default 900)")


def add_database_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags that choose a database and how to sign for it (shared by token and sql)."""
    parser.add_argument("--key", default="loot-key.json", help="private key file from `loot keygen` (default loot-key.json)")
    parser.add_argument("--db", required=True, help="database name (the token's db.name)")
    parser.add_argument("--tenant", required=True, help="tenant (the token's db.tenant)")
    schema = parser.add_mutually_exclusive_group()
    schema.add_argument("--schema", help="the schema claim inline (CREATE statements)")
    schema.add_argument("--schema-file", type=Path, help="file with the schema claim")


def token_for(args: argparse.Namespace, ttl: int = 900) -> str:
    try:
        key = Key.load(args.key)
    except FileNotFoundError:
        sys.exit(f"loot: no key at {args.key}; create one with `loot keygen --out {args.key}`")
    except ValueError as error:
        sys.exit(f"loot: {error}")
    schema = args.schema_file.read_text() if args.schema_file else args.schema
    return mint(key, args.db, args.tenant, ttl=ttl, schema=schema)


def token(args: argparse.Namespace) -> None:
    print(token_for(args, args.ttl))
