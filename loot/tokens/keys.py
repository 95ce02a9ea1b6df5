"""Signing keys: a key pair is an account (docs/concepts.md). ES256 (P-256) or EdDSA (Ed25519).

Keys are python-jose key objects (Ed25519 through the class loot.tokens.ed25519
registers), saved as private JWKs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from jose import jwk
from jose.backends.base import Key as JoseKey
from jose.exceptions import JWKError

from loot.tokens import ed25519 as _registers_eddsa  # noqa: F401  (jose.jwk learns alg EdDSA)
from loot.tokens.jwk import KEY_TYPES, thumbprint

if TYPE_CHECKING:
    from loot.tokens.delegated_key import DelegatedKey

ALGORITHMS = tuple(KEY_TYPES)
MAX_KEY_FILE_BYTES = 64 * 1024  # a private JWK is about 250 bytes; `--key /dev/zero` must not read forever
KEY_FILE = "a key file is the private JWK (JSON) that `loot keygen --out FILE` writes"
_GENERATORS = {
    "ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "EdDSA": ed25519.Ed25519PrivateKey.generate,
}


class Key:
    """A private signing key, its public JWK and its account (the JWK's thumbprint)."""

    def __init__(self, jose_key: JoseKey, alg: str):
        _require_known(alg)
        if jose_key.is_public():
            raise ValueError("a signing key needs its private part")
        self.alg = alg
        self.jose_key = jose_key
        public = jose_key.public_key().to_dict()
        self.public_jwk = {name: public[name] for name in ("kty", "crv", "x", "y") if name in public}
        self.account = thumbprint(self.public_jwk)

    @classmethod
    def generate(cls, alg: str = "ES256") -> Key:
        _require_known(alg)
        return cls(jwk.construct(_GENERATORS[alg](), alg), alg)

    @classmethod
    def from_jwk(cls, private_jwk: dict[str, Any]) -> Key | DelegatedKey:
        """A key from a private JWK (ours, or one exported by another JOSE library)."""
        if "cert" in private_jwk:  # an app key saved with its certificate
            return cls.delegated(cls.from_jwk({k: v for k, v in private_jwk.items() if k != "cert"}),
                                 private_jwk["cert"])
        alg = private_jwk.get("alg") or _alg_of(private_jwk)
        if not isinstance(alg, str) or "d" not in private_jwk or \
                KEY_TYPES.get(alg) != (private_jwk.get("kty"), private_jwk.get("crv")):
            raise ValueError("not a private P-256 (ES256) or Ed25519 (EdDSA) JWK; make one with `loot keygen --out FILE`")
        try:
            return cls(jwk.construct(private_jwk, alg), alg)
        except (JWKError, TypeError) as error:  # python-jose raises TypeError for members that are not strings
            raise ValueError(f"not a usable private JWK: {error}") from error

    def private_jwk(self) -> dict[str, Any]:
        return {**self.jose_key.to_dict(), "alg": self.alg}

    def save(self, path: str | Path) -> None:
        """Write the private JWK, readable by the owner only."""
        data = json.dumps(self.private_jwk(), indent=2) + "\n"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(data)

    @classmethod
    def load(cls, path: str | Path) -> Key | DelegatedKey:
        """The key `save` (or `loot keygen`) wrote to `path`: OSError if it cannot be read, ValueError saying
        what the file should be if it is not such a key."""
        with open(path, "rb") as file:
            data = file.read(MAX_KEY_FILE_BYTES + 1)
        if len(data) > MAX_KEY_FILE_BYTES:
            raise ValueError(f"{path} is larger than {MAX_KEY_FILE_BYTES} bytes; {KEY_FILE}")
        try:
            private_jwk = json.loads(data)
        except ValueError:  # also UnicodeDecodeError
            found = "a PEM file" if data.lstrip().startswith(b"-----BEGIN") else "not JSON"
            raise ValueError(f"{path} is {found}; {KEY_FILE}") from None
        if not isinstance(private_jwk, dict):
            raise ValueError(f"{path} holds JSON but not an object; {KEY_FILE}")
        try:
            return cls.from_jwk(private_jwk)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from error

    def token(self, name: str, tenant: str, *, schema: str | None = None, ttl: int = 900,
              readonly: bool = False, before: str | None = None, **claims: Any) -> str:
        """A signed token for database (self.account, name, tenant); extra claims become readable by claim()."""
        from loot.tokens.mint import mint

        return mint(self, name, tenant, ttl=ttl, schema=schema, readonly=readonly or None, before=before, **claims)

    def provision(self, subject: str, template: str | None = None, *, name: str = "app", ttl: int = 900):
        """The database-per-signed-in-user recipe: a fresh short-lived token for `subject`'s own database."""
        from loot.tokens.provision import provision

        return provision(self, subject, template, name=name, ttl=ttl)

    # Delegation (docs/tokens.md, "Delegated keys"): this key, an account's root, vouches for app keys.
    def certify(self, public_jwk: dict[str, Any], *, ttl: float, **limits: Any) -> str:
        """A certificate letting the key `public_jwk` sign tokens for this account for `ttl` seconds;
        limits: names=[...], prefixes=[...], readonly=True, privileged=True (allow before/after/instead/destroy)."""
        from loot.tokens.certificates import certify

        return certify(self, public_jwk, ttl=ttl, **limits)

    def delegate(self, *, ttl: float, alg: str | None = None, **limits: Any) -> DelegatedKey:
        """A new app key, certified by this one: it signs tokens for this account (see `certify`)."""
        app = Key.generate(alg or self.alg)
        return self.delegated(app, self.certify(app.public_jwk, ttl=ttl, **limits))

    @staticmethod
    def delegated(app: Key, certificate: str) -> DelegatedKey:
        from loot.tokens.delegated_key import DelegatedKey

        return DelegatedKey(app, certificate)


def _require_known(alg: str) -> None:
    if alg not in ALGORITHMS:
        raise ValueError(f"alg must be one of {', '.join(ALGORITHMS)}, not {alg!r}")


def _alg_of(private_jwk: dict[str, Any]) -> str | None:
    kind = (private_jwk.get("kty"), private_jwk.get("crv"))
    return next((alg for alg, key_type in KEY_TYPES.items() if key_type == kind), None)
