"""Signing keys: a key pair is an account (SPEC §1)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from loot.tokens.jwk import b64url, b64url_decode, thumbprint


class Key:
    """An ES256 (P-256) signing key and its public JWK."""

    alg = "ES256"

    def __init__(self, private_key: ec.EllipticCurvePrivateKey):
        self._private = private_key
        numbers = private_key.public_key().public_numbers()
        self.public_jwk = {"kty": "EC", "crv": "P-256", "x": _coord(numbers.x), "y": _coord(numbers.y)}
        self.account = thumbprint(self.public_jwk)

    @classmethod
    def generate(cls) -> Key:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    def private_jwk(self) -> dict[str, Any]:
        d = self._private.private_numbers().private_value
        return {**self.public_jwk, "d": _coord(d), "alg": self.alg}

    def save(self, path: str | Path) -> None:
        """Write the private JWK, readable by the owner only."""
        data = json.dumps(self.private_jwk(), indent=2) + "\n"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(data)

    @classmethod
    def load(cls, path: str | Path) -> Key:
        jwk = json.loads(Path(path).read_text())
        if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256" or "d" not in jwk:
            raise ValueError(f"{path}: not a P-256 private JWK (make one with `loot keygen`)")
        d = int.from_bytes(b64url_decode(jwk["d"]), "big")
        return cls(ec.derive_private_key(d, ec.SECP256R1()))

    @property
    def private_key(self) -> ec.EllipticCurvePrivateKey:
        return self._private

    def token(self, name: str, tenant: str, *, schema: str | None = None, ttl: int | None = 900,
              readonly: bool = False, before: str | None = None, **claims: Any) -> str:
        """A signed token for database (self.account, name, tenant); extra claims become readable by claim()."""
        from loot.tokens.mint import mint

        return mint(self, name, tenant, ttl=ttl, schema=schema, readonly=readonly or None, before=before, **claims)

    def provision(self, subject: str, template: str | None = None, *, name: str = "app", ttl: int = 900):
        """The database-per-signed-in-user recipe: a fresh short-lived token for `subject`'s own database."""
        from loot.sdk.provision import provision

        return provision(self, subject, template, name=name, ttl=ttl)


def _coord(value: int) -> str:
    return b64url(value.to_bytes(32, "big"))
