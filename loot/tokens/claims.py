"""What a verified token grants (docs/tokens.md): one database and the privileged context, or, for an
account token (`scope: account`, no `db`), the account methods alone (docs/fleet.md).

`claims_from` checks a payload whose signature already verified.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from loot.tokens.claim_paths import check_paths
from loot.tokens.errors import invalid, shown, unauthenticated

ISSUER = "https://self-issued.me"
COMPAT_DATES = ("2025-08-01",)
SKEW = 30.0  # seconds of clock difference allowed between the signer and the router
MAX_LIFETIME = 24 * 3600.0  # the longest a token may live (`exp` - `iat`) unless the router is told otherwise
MAX_TIME = 253_402_300_799  # 9999-12-31T23:59:59Z: a later time claim is a mistake (and would overflow a float)
MAX_NAME_BYTES = 256
_TEXT_CLAIMS = ("schema", "before", "after", "instead")
_FLAG_CLAIMS = ("readonly", "destroy")
ACCOUNT_SCOPE = "account"


@dataclass(frozen=True)
class Claims:
    account: str
    name: str
    tenant: str
    payload: dict[str, Any] = field(repr=False)
    expires_at: float | None = None
    delegate: str | None = None  # the app key's thumbprint, when a certificate let it sign for the account
    scope: str = ""  # ACCOUNT_SCOPE for an account token (no database: name and tenant empty)

    @property
    def for_account(self) -> bool:
        return self.scope == ACCOUNT_SCOPE

    def text(self, claim: str) -> str:
        value = self.payload.get(claim)
        return value if isinstance(value, str) else ""

    def flag(self, claim: str) -> bool:
        return self.payload.get(claim) is True


def claims_from(payload: dict[str, Any], account: str, now: float, max_lifetime: float = MAX_LIFETIME) -> Claims:
    """The claims of a signed payload for `account`, or the Fault naming the first rule it breaks."""
    _check_identity(payload, account)
    _check_validity(payload, now, max_lifetime)
    if "scope" in payload:
        _check_account_scope(payload)
        return Claims(account, "", "", payload, payload.get("exp"), scope=ACCOUNT_SCOPE)
    _check_request(payload)
    db = payload["db"]
    return Claims(account, db["name"], db["tenant"], payload, payload.get("exp"))


def _check_identity(payload: dict[str, Any], account: str) -> None:
    if payload.get("iss") != ISSUER:
        raise unauthenticated("BAD_ISSUER", f"`iss` must be {ISSUER!r} (got {shown(payload.get('iss'))})",
                              expected=ISSUER)
    if payload.get("sub") != account:
        raise unauthenticated("SUB_MISMATCH", f"`sub` must be the signing key's thumbprint {account!r} "
                              f"(got {shown(payload.get('sub'))})", expected=account)


def _check_validity(payload: dict[str, Any], now: float, max_lifetime: float) -> None:
    times = {claim: _time(payload, claim) for claim in ("exp", "nbf", "iat")}
    if times["exp"] is None:
        raise unauthenticated("MISSING_EXP", "the token has no `exp`: tokens must expire (mint it with a ttl, at "
                              f"most {max_lifetime:.0f} s)", limit=f"{max_lifetime:.0f}")
    # From `iat` when the token says when it was minted, else from now: a leaked token is never good for longer.
    start = now if times["iat"] is None else times["iat"]
    if times["exp"] - start > max_lifetime + SKEW:
        raise unauthenticated("TOKEN_LIFETIME_TOO_LONG", f"the token lives {times['exp'] - start:.0f} s; this router "
                              f"accepts at most {max_lifetime:.0f} s (--max-token-lifetime): mint it with a shorter ttl",
                              limit=f"{max_lifetime:.0f}")
    if now > times["exp"] + SKEW:
        raise unauthenticated("TOKEN_EXPIRED", f"the token expired {now - times['exp']:.0f} s ago: mint a new one",
                              exp=times["exp"])
    for claim in ("nbf", "iat"):
        if times[claim] is not None and now < times[claim] - SKEW:
            raise unauthenticated("TOKEN_NOT_YET_VALID", f"`{claim}` is {times[claim] - now:.0f} s in the future: "
                                  "check the signer's clock", claim=claim)


def _time(payload: dict[str, Any], claim: str) -> float | None:
    value = payload.get(claim)
    if value is None:
        return None
    # Compared before any arithmetic: a 400-digit integer cannot become a float.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MAX_TIME:
        raise unauthenticated("BAD_TIME_CLAIM", f"`{claim}` must be a number of seconds since 1970, at most "
                              f"{MAX_TIME} (got {shown(value)})", claim=claim)
    return value


def _check_account_scope(payload: dict[str, Any]) -> None:
    """An account token: `scope` is "account", and nothing of a database token comes with it."""
    _check_compat(payload)
    if payload["scope"] != ACCOUNT_SCOPE:
        raise invalid("BAD_SCOPE", f"`scope` must be {ACCOUNT_SCOPE!r} (got {shown(payload['scope'])}); a database "
                      "token has no `scope`", claim="scope")
    database_claims = [claim for claim in ("db", *_TEXT_CLAIMS, *_FLAG_CLAIMS) if claim in payload]
    if database_claims:
        raise invalid("BAD_SCOPE", f"an account token names no database and carries no database claims (got "
                      f"{', '.join(database_claims)})", claim=database_claims[0])


def _check_compat(payload: dict[str, Any]) -> None:
    if payload.get("compat") not in COMPAT_DATES:
        raise invalid("UNKNOWN_COMPAT", f"`compat` {shown(payload.get('compat'))} is not supported; use one of: "
                      f"{', '.join(COMPAT_DATES)}", supported=",".join(COMPAT_DATES))


def _check_request(payload: dict[str, Any]) -> None:
    _check_compat(payload)
    db = payload.get("db")
    if not isinstance(db, dict):
        raise invalid("BAD_DB_CLAIM", "`db` must be an object with `name` and `tenant` strings", claim="db")
    for part in ("name", "tenant"):
        value = db.get(part)
        if not isinstance(value, str) or not value or len(value.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
            raise invalid("BAD_DB_CLAIM", f"`db.{part}` must be a non-empty string of at most {MAX_NAME_BYTES} "
                          "UTF-8 bytes", claim=f"db.{part}")
    _check_types(payload, _TEXT_CLAIMS, str, "a string of SQL")
    _check_types(payload, _FLAG_CLAIMS, bool, "true or false")
    check_paths(payload)


def _check_types(payload: dict[str, Any], claims: tuple[str, ...], kind: type, described: str) -> None:
    for claim in claims:
        if claim in payload and not isinstance(payload[claim], kind):
            raise invalid("BAD_CLAIM", f"`{claim}` must be {described} (got {type(payload[claim]).__name__})",
                          claim=claim)
