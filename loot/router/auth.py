"""Reading the bearer token from a call's metadata and verifying it (through the verified-token cache)."""

from __future__ import annotations

import functools
from collections.abc import Iterable

import grpc

from loot.status import Fault
from loot.tokens.cache import VerifiedTokens
from loot.tokens.claims import MAX_LIFETIME
from loot.tokens.errors import unauthenticated
from loot.router.admission import Admission, admit
from loot.router.allowlist import Allowlist
from loot.router.rate_limits import RateLimits


def verified_tokens(max_lifetime: float = MAX_LIFETIME) -> VerifiedTokens[Admission]:
    """The router's cache of admitted tokens (one per process: every call is served on one event loop)."""
    return VerifiedTokens(verify=functools.partial(admit, max_lifetime=max_lifetime))


def bearer_token(metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    values = [v for k, v in metadata or () if k == "authorization"]
    if not values:
        raise unauthenticated("MISSING_TOKEN", "send `authorization: Bearer <token>` metadata")
    if len(values) > 1:
        raise unauthenticated("BAD_AUTHORIZATION", "send exactly one `authorization` metadata entry")
    value = values[0]
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthenticated("BAD_AUTHORIZATION", "the authorization metadata must be `Bearer <token>`")
    return token.strip()


def authenticate(context: grpc.aio.ServicerContext, tokens: VerifiedTokens[Admission]) -> Admission:
    return tokens.verify(bearer_token(context.invocation_metadata()))


def admit_call(context: grpc.aio.ServicerContext, tokens: VerifiedTokens[Admission], accounts: Allowlist,
               limits: RateLimits | None, *, account_methods: bool) -> Admission:
    """The call's token (through the verified-token cache), of the kind its method takes, then its account:
    the allowlist and the rate limit are checked on every call, cached token or not, so a reload applies
    to the next one. An account token calls the account methods only, a database token never does."""
    admission = authenticate(context, tokens)
    if admission.claims.for_account and not account_methods:
        raise Fault(grpc.StatusCode.PERMISSION_DENIED, "ACCOUNT_TOKEN", "an account token calls the account "
                    "methods only (docs/fleet.md): mint a database token to use a database")
    if account_methods and not admission.claims.for_account:
        raise Fault(grpc.StatusCode.PERMISSION_DENIED, "DATABASE_TOKEN", "a database token cannot call the account "
                    "methods: mint an account token (`scope: account`, no `db`; docs/tokens.md)")
    return check_account(admission, accounts, limits)


def check_account(admission: Admission, accounts: Allowlist, limits: RateLimits | None) -> Admission:
    """The allowlist, then one call from the account's rate limit."""
    accounts.check(admission.claims)
    if limits is not None:
        limits.take(admission.claims.account)
    return admission
