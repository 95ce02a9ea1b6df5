"""The flags that choose a database and sign for it, shared by token, sql, shell and describe."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from loot.tokens import Key


class UserError(Exception):
    """A mistake on the command line: printed as one line, no traceback."""


def add_arguments(parser: argparse.ArgumentParser, *, token_flag: bool = True) -> None:
    parser.add_argument("--key", default="loot-key.json", help="private key file from `loot keygen` (default loot-key.json)")
    parser.add_argument("--db", help="database name (the token's db.name)")
    parser.add_argument("--tenant", help="tenant (the token's db.tenant)")
    schema = parser.add_mutually_exclusive_group()
    schema.add_argument("--schema", help="the schema claim inline (CREATE statements, INSERT INTO _filters/_rules)")
    schema.add_argument("--schema-file", type=Path, help="file holding the schema claim")
    parser.add_argument("--before", help="privileged SQL run before the request, same transaction")
    parser.add_argument("--after", help="privileged SQL run after the request, same transaction")
    parser.add_argument("--instead", help="one privileged statement run instead of the request's SQL")
    parser.add_argument("--readonly", action="store_true", help="the request's own SQL may not write")
    parser.add_argument("--destroy", action="store_true", help="delete the database after this request")
    parser.add_argument("--claim", action="append", default=[], metavar="PATH=VALUE",
                        help="extra claim readable with claim('PATH'); VALUE is JSON or text; repeatable")
    parser.add_argument("--ttl", type=_lifetime, default=900,
                        help="token lifetime in seconds, at least 1 and at most the router's --max-token-lifetime "
                             "(default 900; routers accept 86400 unless told otherwise)")
    if token_flag:
        parser.add_argument("--token", help="use this ready token instead of minting one (--key/--db/--tenant unused)")


def _lifetime(text: str) -> int:
    try:
        seconds = int(text)
    except ValueError:
        seconds = 0
    if seconds < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of seconds of at least 1: every token "
                                         "expires (routers refuse tokens without `exp`)")
    return seconds


def parse_claims(items: list[str]) -> dict[str, Any]:
    """`user.id=42` -> {"user": {"id": 42}}."""
    claims: dict[str, Any] = {}
    for item in items:
        path, sep, text = item.partition("=")
        if not sep or not path:
            raise UserError(f"--claim wants PATH=VALUE, got {item!r}")
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        *parents, leaf = path.split(".")
        node = claims
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UserError(f"--claim {path}: {part} is already a value")
        node[leaf] = value
    return claims


def load_key(path: str) -> Key:
    try:
        return Key.load(path)
    except FileNotFoundError:
        raise UserError(f"no key at {path}; create one with `loot keygen --out {path}`") from None
    except IsADirectoryError:
        raise UserError(f"{path} is a directory; --key takes the key file `loot keygen --out FILE` writes") from None
    except OSError as error:
        raise UserError(f"cannot read the key file {path}: {error.strerror}") from None
    except ValueError as error:
        raise UserError(str(error)) from None


def token_claims(args: argparse.Namespace) -> dict[str, Any]:
    """The optional claims the flags ask for (None and False are left out)."""
    schema = args.schema_file.read_text() if args.schema_file else args.schema
    privileged = {"schema": schema, "before": args.before, "after": args.after, "instead": args.instead,
                  "readonly": args.readonly or None, "destroy": args.destroy or None}
    return {**parse_claims(args.claim), **{k: v for k, v in privileged.items() if v is not None}}


def require_database(args: argparse.Namespace) -> tuple[str, str]:
    if not args.db or not args.tenant:
        raise UserError("say which database: --db NAME --tenant TENANT (or pass --token)")
    return args.db, args.tenant


def open_database(client, args: argparse.Namespace):
    """A Database handle for the flags: the ready --token, or tokens minted from --key."""
    if getattr(args, "token", None):
        return client.open(args.token)
    name, tenant = require_database(args)
    key, claims = load_key(args.key), token_claims(args)
    try:
        return client.database(name, tenant, key=key, ttl=args.ttl, **claims)
    except ValueError as error:  # a lifetime too short to renew the token before it expires
        raise UserError(f"--ttl {args.ttl}: {error}") from None

