"""Verifying a token signed by an account's own key or by an app key it certified (docs/tokens.md).

The certificate in the header is verified first (once per distinct header, loot/tokens/certificates.py),
then the token's signature with its embedded key, which must be the certified one; the claims are
checked for the certificate's account, then against its limits.
"""

from __future__ import annotations

import time

from loot.tokens.certificates import cached_certificate_in
from loot.tokens.claims import MAX_LIFETIME, Claims, claims_from
from loot.tokens.errors import unauthenticated
from loot.tokens.verify import _segments, verified_payload, verify


def verify_token(token: str, now: float | None = None, max_lifetime: float = MAX_LIFETIME) -> Claims:
    """Like loot.tokens.verify.verify, for tokens with or without a certificate; a certified token's
    Claims name the app key (`delegate`) and expire with the certificate at the latest. Either kind must
    have `exp` and live at most `max_lifetime` seconds, however long the certificate lasts."""
    certificate = cached_certificate_in(_segments(token)[0])
    if certificate is None:
        return verify(token, now, max_lifetime)
    key, payload = verified_payload(token)
    if key.account != certificate.key:
        raise unauthenticated("CERTIFICATE_KEY_MISMATCH", "the token is signed by a key its certificate does not "
                              "name (`cnf.jkt`)", expected=certificate.key)
    now = time.time() if now is None else now
    return certificate.admit(claims_from(payload, certificate.account, now, max_lifetime), now)
