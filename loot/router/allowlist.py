"""Which accounts a router serves: every one (open), or only those an allowlist names; and which app keys
(docs/tokens.md, "Delegated keys") it no longer accepts.

Safe by default: a router listening on an address other than loopback needs an allowlist
(--accounts, --accounts-file) or --open-accounts, said on purpose. The list is checked on
every call, after the token (the verified-token cache holds no allowlist answer), so a
reload applies to the next call: calls admitted before it finish (docs/operations.md).
"""

from __future__ import annotations

import argparse
import ipaddress

import grpc

from loot.settings import add_flag
from loot.status import Fault
from loot.thumbprint_list import ThumbprintList
from loot.tokens import Claims

_LOOPBACK_NAMES = ("localhost",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_flag(parser, "--accounts", help="the accounts (key thumbprints) served, comma-separated; others are "
                                        "refused with ACCOUNT_NOT_ALLOWED")
    add_flag(parser, "--accounts-file", help="file of the accounts served, one thumbprint a line (# comments), "
                                             "reloaded on change or SIGHUP; adds to --accounts")
    add_flag(parser, "--revoked-keys", help="app keys (thumbprints) whose tokens are refused although their "
                                            "certificate is valid, comma-separated")
    add_flag(parser, "--revoked-keys-file", help="file of revoked app keys, one thumbprint a line (# comments), "
                                                 "reloaded on change or SIGHUP; adds to --revoked-keys")
    add_flag(parser, "--accounts-poll", default=2.0, type=float,
             help="seconds between checks of the accounts and revoked-keys files for changes (0 = only on SIGHUP)")
    add_flag(parser, "--open-accounts", action="store_true",
             help="serve every account (anyone with a key) even when listening beyond loopback")


class Allowlist:
    """The accounts served (`listed` None: every account) and the app keys revoked."""

    def __init__(self, listed: ThumbprintList | None, revoked: ThumbprintList):
        self.listed = listed
        self.revoked = revoked

    @property
    def accounts(self) -> frozenset[str] | None:
        return None if self.listed is None else self.listed.current

    def check(self, claims: Claims) -> None:
        """PERMISSION_DENIED ACCOUNT_NOT_ALLOWED unless the account is served; UNAUTHENTICATED KEY_REVOKED when
        an app key signed the token and is revoked."""
        if self.listed is not None and claims.account not in self.listed.current:
            raise Fault(grpc.StatusCode.PERMISSION_DENIED, "ACCOUNT_NOT_ALLOWED",
                        f"account {claims.account} is not on this cluster's allowlist: ask its operator to add it",
                        account=claims.account)
        if claims.delegate is not None and claims.delegate in self.revoked.current:
            raise Fault(grpc.StatusCode.UNAUTHENTICATED, "KEY_REVOKED", f"app key {claims.delegate} is revoked: "
                        "sign with a key its account certified since", key=claims.delegate)

    def start_watching(self, poll_seconds: float) -> None:
        for listed in (self.listed, self.revoked):
            if listed is not None:
                listed.start_watching(poll_seconds)


def is_loopback(host: str) -> bool:
    """True for addresses only this machine reaches (127.0.0.0/8, ::1, localhost); False for 0.0.0.0, ::, names."""
    host = host.strip("[]")
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def from_arguments(args: argparse.Namespace, role: str) -> Allowlist:
    """The allowlist the settings ask for; SystemExit when they contradict each other or leave a public
    listener open without saying so."""
    listed = bool(args.accounts or args.accounts_file)
    if listed and args.open_accounts:
        raise SystemExit(f"loot {role}: --open-accounts serves every account, so it cannot go with --accounts or "
                         "--accounts-file (LOOT_ACCOUNTS, LOOT_ACCOUNTS_FILE): give one or the other")
    if not listed and not args.open_accounts and not is_loopback(args.host):
        raise SystemExit(
            f"loot {role}: refusing to listen on {args.host} (beyond loopback) with no account allowlist: anyone "
            "with a key could create databases here. Give --accounts-file FILE or --accounts THUMBPRINT,... "
            "(LOOT_ACCOUNTS_FILE, LOOT_ACCOUNTS) to serve only those accounts, or --open-accounts "
            "(LOOT_OPEN_ACCOUNTS=true) to serve every account on purpose (docs/operations.md)")
    revoked = ThumbprintList.from_settings("revoked keys", args.revoked_keys, args.revoked_keys_file)
    if not listed:
        return Allowlist(None, revoked)
    return Allowlist(ThumbprintList.from_settings("allowed accounts", args.accounts, args.accounts_file), revoked)
