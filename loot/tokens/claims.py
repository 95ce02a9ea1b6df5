"""What a verified token grants: one database and the privileged context."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ISSUER = "https://self-issued.me"
COMPAT_DATES = ("2025-08-01",)


@dataclass(frozen=True)
class Claims:
    account: str
    name: str
    tenant: str
    payload: dict[str, Any] = field(repr=False)
    expires_at: float | None = None

    def text(self, claim: str) -> str:
        value = self.payload.get(claim)
        return value if isinstance(value, str) else ""

    def flag(self, claim: str) -> bool:
        return self.payload.get(claim) is True
