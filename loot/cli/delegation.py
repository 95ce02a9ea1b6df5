"""`loot keygen --delegate ROOT`: a new app key certified by an account's root key (docs/tokens.md)."""

from __future__ import annotations

import argparse
import re
from datetime import datetime, timezone

from loot.cli.target import UserError, load_key
from loot.tokens.delegated_key import DelegatedKey
from loot.tokens.keys import Key

_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+)([smhd]?)")


def duration(text: str) -> int:
    """Seconds from `90`, `90s`, `15m`, `12h` or `30d`."""
    match = _DURATION.fullmatch(text.strip())
    if not match or int(match[1]) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 3600, 12h or 30d")
    return int(match[1]) * _UNITS[match[2]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("delegation", "make an app key that signs for ROOT's account")
    group.add_argument("--delegate", metavar="ROOT", help="the account's root key file: certify the new key with it")
    group.add_argument("--cert-ttl", type=duration, default=duration("30d"),
                       help="how long the certificate is valid: seconds, or 15m, 12h, 30d (default 30d)")
    group.add_argument("--cert-db", action="append", metavar="NAME", help="a database name its tokens may use "
                       "(repeatable; with no --cert-db nor --cert-db-prefix, any)")
    group.add_argument("--cert-db-prefix", action="append", metavar="PREFIX",
                       help="a database name prefix its tokens may use (repeatable)")
    group.add_argument("--cert-readonly", action="store_true", help="its tokens must be readonly, with no schema")
    group.add_argument("--cert-privileged", action="store_true",
                       help="its tokens may carry before, after, instead and destroy (refused otherwise)")


def wants_delegation(args: argparse.Namespace) -> bool:
    """True with --delegate; a UserError when certificate flags come without it."""
    limits = args.cert_db or args.cert_db_prefix or args.cert_readonly or args.cert_privileged
    if limits and not args.delegate:
        raise UserError("--cert-* flags describe an app key's certificate: add --delegate ROOT")
    return bool(args.delegate)


def delegated_key(args: argparse.Namespace) -> DelegatedKey:
    root = load_key(args.delegate)
    if isinstance(root, DelegatedKey):
        raise UserError(f"{args.delegate} is an app key itself; certify with the account's root key (one level only)")
    return root.delegate(ttl=args.cert_ttl, alg=args.alg, names=args.cert_db, prefixes=args.cert_db_prefix,
                         readonly=args.cert_readonly, privileged=args.cert_privileged)


def describe(key: Key | DelegatedKey) -> str:
    if isinstance(key, DelegatedKey):
        until = datetime.fromtimestamp(key.expires_at, timezone.utc).isoformat(timespec="seconds")
        return f"{key.alg} app key {key.app.account} for account {key.account}, certified until {until}"
    return f"{key.alg} account {key.account}"
