"""`loot keygen`."""

from __future__ import annotations

import argparse
from pathlib import Path

from loot.cli.target import UserError
from loot.tokens import Key


def add_keygen_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="loot-key.json", help="where to write the private key (default loot-key.json)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing key file")


def keygen(args: argparse.Namespace) -> None:
    path = Path(args.out)
    if path.exists() and not args.force:
        raise UserError(f"{path} exists; pass --force to replace it (its databases stay with the old key)")
    key = Key.generate()
    key.save(path)
    print(f"wrote {path}; account {key.account}")

