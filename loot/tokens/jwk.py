"""Public JWKs: RFC 7638 thumbprints (the account) and keys for signature checks."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

# RFC 7638 §3.2: the required members of each key type, in lexicographic order.
_REQUIRED = {"EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 SHA-256 thumbprint, base64url without padding."""
    members = {name: jwk[name] for name in _REQUIRED[jwk["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return b64url(hashlib.sha256(canonical.encode()).digest())
