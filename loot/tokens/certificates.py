"""Delegation certificates: an account's root key vouches for an app key (docs/tokens.md, "Delegated keys").

A certificate is a compact JWS signed by the root key: header `{"alg", "typ": "loot-cert", "jwk": <root
public JWK>}`, payload `{"sub": <root thumbprint>, "cnf": {"jkt": <app key thumbprint>}, "exp", ...limits}`.
A token signed by the app key carries it in its header (`cert`) and names the root's account in `sub`.
Unknown members are refused, so a limit added later can never be ignored by an older router.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import grpc
from jose import jws

from loot.status import Fault
from loot.tokens.claims import MAX_NAME_BYTES, SKEW, Claims
from loot.tokens.errors import shown, unauthenticated
from loot.tokens.jwk import KEY_TYPES, PublicKey, embedded_key, thumbprint
from loot.tokens.verify import _decode, _json_object, _segments  # the token's own strict parsing

if TYPE_CHECKING:
    from loot.tokens.keys import Key

TYPE = "loot-cert"
HEADER_MEMBER = "cert"  # where a token's header carries its certificate
PRIVILEGED_CLAIMS = ("before", "after", "instead", "destroy")
MAX_LIMIT_ENTRIES = 256
MAX_CACHED_HEADER = 4096  # a token header with its certificate is about 1 KiB
_MEMBERS = {"sub", "cnf", "exp", "nbf", "iat", "names", "prefixes", "readonly", "privileged"}


@dataclass(frozen=True)
class Certificate:
    account: str  # the root key's thumbprint: the account the app key's tokens act for
    key: str  # the app key's thumbprint (cnf.jkt)
    expires_at: float
    not_before: float | None
    names: frozenset[str] | None  # None: any name (unless prefixes say otherwise)
    prefixes: tuple[str, ...] | None
    readonly: bool
    privileged: bool

    def check_time(self, now: float) -> None:
        if now > self.expires_at + SKEW:
            raise unauthenticated("CERTIFICATE_EXPIRED", f"the app key's certificate expired "
                                  f"{now - self.expires_at:.0f} s ago: certify the key again", exp=self.expires_at)
        if self.not_before is not None and now < self.not_before - SKEW:
            raise unauthenticated("CERTIFICATE_NOT_YET_VALID", f"the app key's certificate is valid in "
                                  f"{self.not_before - now:.0f} s: check the signer's clock")

    def admit(self, claims: Claims, now: float) -> Claims:
        """`claims` (signed by the app key, for this account) within the certificate's limits, expiring with it."""
        self.check_time(now)
        if claims.for_account:  # no certificate member grants it: listing or migrating every database is the root's
            _exceeds("scope", "a certified app key cannot sign account tokens; sign them with the account's own key")
        if not self.allows_name(claims.name):
            _exceeds("names", f"the certificate does not cover database {shown(claims.name)}")
        if self.readonly and (not claims.flag("readonly") or "schema" in claims.payload):
            _exceeds("readonly", "the certificate allows read-only tokens: `readonly: true` and no `schema` claim")
        if not self.privileged:
            used = [claim for claim in PRIVILEGED_CLAIMS if claim in claims.payload]
            if used:
                _exceeds("privileged", f"the certificate allows no privileged claims (got {', '.join(used)})")
        return replace(claims, expires_at=min(claims.expires_at, self.expires_at), delegate=self.key)

    def allows_name(self, name: str) -> bool:
        if self.names is None and self.prefixes is None:
            return True
        return name in (self.names or ()) or any(name.startswith(prefix) for prefix in self.prefixes or ())


def _exceeds(limit: str, message: str) -> None:
    raise Fault(grpc.StatusCode.PERMISSION_DENIED, "CERTIFICATE_LIMIT", message, limit=limit)


def certify(root: Key, public_jwk: dict[str, Any], *, ttl: float, now: float | None = None,
            names: list[str] | None = None, prefixes: list[str] | None = None, readonly: bool = False,
            privileged: bool = False) -> str:
    """A certificate, signed by `root`, letting the key `public_jwk` sign tokens for root's account
    for `ttl` seconds, within the limits given."""
    issued = int(time.time() if now is None else now)
    payload: dict[str, Any] = {"sub": root.account, "cnf": {"jkt": thumbprint(public_jwk)}, "iat": issued,
                               "exp": issued + int(ttl)}
    for member, value in (("names", names), ("prefixes", prefixes)):
        if value is not None:
            payload[member] = list(value)
    payload.update({member: True for member, value in (("readonly", readonly), ("privileged", privileged)) if value})
    try:
        read_certificate_payload(payload, root.account)  # never sign what a router would refuse
    except Fault as fault:
        raise ValueError(fault.message) from None
    return jws.sign(payload, root.jose_key, headers={"typ": TYPE, "jwk": root.public_jwk}, algorithm=root.alg)


@functools.lru_cache(maxsize=4096)
def certificate_in(header_text: str) -> Certificate | None:
    """The verified certificate a token header carries (None when it has none), checked once per distinct
    header: an app key signs many tokens with one header. Time is checked per token (`Certificate.admit`)."""
    return _certificate_in(header_text)


def _certificate_in(header_text: str) -> Certificate | None:
    header = _json_object(header_text, "header")
    if HEADER_MEMBER not in header:
        return None
    text = header[HEADER_MEMBER]
    if not isinstance(text, str):
        raise _bad("`cert` in the token header must be a certificate (a compact JWS string)")
    return read_certificate(text)


def cached_certificate_in(header_text: str) -> Certificate | None:
    return certificate_in(header_text) if len(header_text) <= MAX_CACHED_HEADER else _certificate_in(header_text)


def read_certificate(text: str) -> Certificate:
    """A certificate whose structure and signature hold (not its times), or UNAUTHENTICATED BAD_CERTIFICATE."""
    try:
        header_text, payload_text, signature_text = _segments(text)
        header, signature = _json_object(header_text, "header"), _decode(signature_text, "signature")
        root = _root_key(header)
        payload = _json_object(payload_text, "payload")
    except Fault as fault:
        if fault.reason in ("BAD_CERTIFICATE", "CERTIFICATE_CHAIN"):
            raise
        raise _bad(f"certificate: {fault.message}") from None
    if not root.verifies(signature, f"{header_text}.{payload_text}".encode("ascii")):
        raise _bad("the certificate's signature does not verify with the key in its `jwk` header")
    return read_certificate_payload(payload, root.account)


def _root_key(header: dict[str, Any]) -> PublicKey:
    if header.get("typ") != TYPE:
        raise _bad(f"a certificate's header has `typ` {TYPE!r} (got {shown(header.get('typ'))})")
    if HEADER_MEMBER in header:
        raise Fault(grpc.StatusCode.UNAUTHENTICATED, "CERTIFICATE_CHAIN", "the certificate carries a certificate "
                    "itself: only a root key (an account) may certify an app key, one level")
    if "crit" in header or set(header) - {"alg", "typ", "jwk", "kid"}:
        raise _bad("a certificate's header has only `alg`, `typ`, `jwk` (and optionally `kid`)")
    alg = header.get("alg")
    if alg not in KEY_TYPES:
        raise _bad(f"a certificate is signed with ES256 or EdDSA (got alg {shown(alg)})")
    return embedded_key(header.get("jwk"), alg)


def read_certificate_payload(payload: dict[str, Any], root_account: str) -> Certificate:
    unknown = sorted(set(payload) - _MEMBERS)
    if unknown:
        raise _bad(f"unknown certificate member(s) {shown(', '.join(unknown))}: this router cannot enforce them")
    if payload.get("sub") != root_account:
        raise _bad(f"the certificate's `sub` must be its signing key's thumbprint {root_account!r}")
    cnf = payload.get("cnf")
    if not isinstance(cnf, dict) or set(cnf) != {"jkt"} or not isinstance(cnf["jkt"], str) or len(cnf["jkt"]) != 43:
        raise _bad("the certificate's `cnf` must be {\"jkt\": <the app key's thumbprint>}")
    expires, not_before = _time(payload, "exp"), _time(payload, "nbf")
    _time(payload, "iat")
    if expires is None:
        raise _bad("a certificate must have `exp`")
    flags = {flag: payload.get(flag, False) for flag in ("readonly", "privileged")}
    if not all(isinstance(value, bool) for value in flags.values()):
        raise _bad("the certificate's `readonly` and `privileged` are true or false")
    return Certificate(root_account, cnf["jkt"], expires, not_before, _names(payload, "names", frozenset),
                       _names(payload, "prefixes", tuple), **flags)


def _time(payload: dict[str, Any], member: str) -> float | None:
    value = payload.get(member)
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                              or not math.isfinite(value)):
        raise _bad(f"the certificate's `{member}` must be a number of seconds since 1970")
    return value


def _names(payload: dict[str, Any], member: str, kind: type) -> Any:
    value = payload.get(member)
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > MAX_LIMIT_ENTRIES or not all(
            isinstance(name, str) and name and len(name.encode("utf-8", "surrogatepass")) <= MAX_NAME_BYTES
            for name in value):
        raise _bad(f"the certificate's `{member}` must be a list of at most {MAX_LIMIT_ENTRIES} non-empty "
                   f"strings of at most {MAX_NAME_BYTES} bytes")
    return kind(value)


def _bad(message: str) -> Fault:
    return unauthenticated("BAD_CERTIFICATE", message)
