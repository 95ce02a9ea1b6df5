"""`loot keygen`."""

from __future__ import annotations

import argparse
from pathlib import Path

from loot.cli import delegation
from loot.cli.target import UserError
from loot.tokens import Key
from loot.tokens.keys import ALGORITHMS


def add_keygen_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="loot-key.json", help="where to write the private key (default loot-key.json)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing key file")
    parser.add_argument("--alg", choices=ALGORITHMS, default="ES256",
                        help="ES256 (P-256, the default) or EdDSA (Ed25519)")
    delegation.add_arguments(parser)


def keygen(args: argparse.Namespace) -> None:
    path = Path(args.out)
    if path.exists() and not args.force:
        raise UserError(f"{path} exists; pass --force to replace it (its databases stay with the old key)")
    key = delegation.delegated_key(args) if delegation.wants_delegation(args) else Key.generate(args.alg)
    try:
        key.save(path)
    except OSError as error:
        raise UserError(f"cannot write the key to {path}: {error.strerror}; --out takes a file path") from None
    print(f"wrote {path}; {delegation.describe(key)}")
