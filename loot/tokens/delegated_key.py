"""An app key with its certificate: signs tokens for the account of the root key that certified it.

Made by `Key.delegate(...)` (or `Key.certify(...)` for a key made elsewhere), saved as the app key's
private JWK plus a `cert` member, and loaded back by `Key.load`. It mints like a Key: `mint(app, ...)`,
`app.token(...)`, `client.database(..., key=app)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from loot.status import Fault
from loot.tokens.certificates import read_certificate

if TYPE_CHECKING:
    from loot.tokens.keys import Key


class DelegatedKey:
    def __init__(self, app: Key, certificate: str):
        if not isinstance(certificate, str):  # a key file's `cert` member may hold anything
            raise ValueError("not a usable certificate: `cert` must be the certificate (a compact JWS string) "
                             "that `loot keygen --delegate ROOT --out FILE` writes")
        try:
            limits = read_certificate(certificate)
        except Fault as fault:
            raise ValueError(f"not a usable certificate: {fault.message}") from None
        if limits.key != app.account:
            raise ValueError("the certificate names another key (its `cnf.jkt` is not this key's thumbprint)")
        self.app, self.certificate, self.limits = app, certificate, limits
        self.account = limits.account  # the root key's: the databases it owns
        self.alg, self.jose_key, self.public_jwk = app.alg, app.jose_key, app.public_jwk

    @property
    def expires_at(self) -> float:
        return self.limits.expires_at

    def private_jwk(self) -> dict[str, Any]:
        return {**self.app.private_jwk(), "cert": self.certificate}

    def save(self, path: str | Path) -> None:
        """Write the private JWK and the certificate, readable by the owner only (as Key.save does)."""
        type(self.app).save(self, path)  # type: ignore[arg-type]  (it only needs private_jwk())

    # Key's own methods, which only mint with it (importing Key here would be a cycle: Key makes these).
    def token(self, name: str, tenant: str, **options: Any) -> str:
        """A signed token for database (self.account, name, tenant): see Key.token."""
        return type(self.app).token(self, name, tenant, **options)  # type: ignore[arg-type]

    def provision(self, subject: str, template: str | None = None, **options: Any):
        """The database-per-signed-in-user recipe, for the account: see Key.provision."""
        return type(self.app).provision(self, subject, template, **options)  # type: ignore[arg-type]
