"""What the router forwards for a verified token, computed once per token (and cached with it)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from loot.ids import database_id
from loot.internal.v1 import shard_pb2
from loot.tokens import Claims, verify
from loot.tokens.claims import MAX_LIFETIME
from loot.router.envelope import context_field


@dataclass(frozen=True, eq=False)
class Admission:
    claims: Claims
    database_id: str
    context_field: bytes  # the shard Context, serialized as field 1 of every shard request
    context: shard_pb2.Context  # the same, for a shard that runs the call itself (loot/node/)

    @property
    def expires_at(self) -> float | None:
        return self.claims.expires_at


def admit(token: str, now: float | None = None, max_lifetime: float = MAX_LIFETIME) -> Admission:
    """Verify `token` and serialize the shard Context: the database id and the claims as JSON."""
    claims = verify(token, now, max_lifetime)
    context = shard_context(claims)
    return Admission(claims, context.database_id, context_field(context.SerializeToString()), context)


def shard_context(claims: Claims) -> shard_pb2.Context:
    if claims.for_account:  # no database: only the account methods take it, and they read only the account
        return shard_pb2.Context(account=claims.account)
    return shard_pb2.Context(
        database_id=database_id(claims.account, claims.name, claims.tenant),
        account=claims.account,
        name=claims.name,
        tenant=claims.tenant,
        schema=claims.text("schema"),
        before=claims.text("before"),
        after=claims.text("after"),
        instead=claims.text("instead"),
        readonly=claims.flag("readonly"),
        destroy=claims.flag("destroy"),
        claims_json=json.dumps(claims.payload, separators=(",", ":")),
    )
