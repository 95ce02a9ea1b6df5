"""Destroying a list of an account's databases (docs/fleet.md): explicit and confirmed.

The tenants are named one by one, and the request repeats what it asks in `confirm`, so no typo, empty
filter or stale script destroys more than its author read. Each listed database is destroyed as a
token with `destroy: true` would destroy it (the shard's destroy phase, after a no-op statement); a
tenant with no database of that name is reported missing, never created to be destroyed.
"""

from __future__ import annotations

import grpc

from loot.ids import database_id
from loot.internal.v1 import shard_pb2
from loot.status import Fault
from loot.v1 import database_pb2 as pb
from loot.router.envelope import context_field, shard_request
from loot.router.rollout import call_owner
from loot.router.shards import Shards

MAX_TENANTS = 1000
_NO_OP = pb.ExecuteRequest(statement=pb.Statement(sql="SELECT 1")).SerializeToString()


def confirmation(name: str, tenants: int) -> str:
    """What `confirm` must say for `tenants` databases of `name`."""
    return f"destroy {tenants} databases of {name}"


def check(request: pb.DestroyDatabasesRequest) -> None:
    """Refuse a request that is not explicit (no name, no tenants, too many, repeats) or not confirmed."""
    tenants = list(request.tenants)
    if not request.name or not tenants or len(tenants) > MAX_TENANTS or "" in tenants:
        raise Fault(grpc.StatusCode.INVALID_ARGUMENT, "BAD_DESTROY", f"name the database `name` and 1 to "
                    f"{MAX_TENANTS} non-empty `tenants`, one by one", limit=MAX_TENANTS)
    if len(set(tenants)) != len(tenants):
        raise Fault(grpc.StatusCode.INVALID_ARGUMENT, "BAD_DESTROY", "a tenant is listed twice")
    expected = confirmation(request.name, len(tenants))
    if request.confirm != expected:
        raise Fault(grpc.StatusCode.FAILED_PRECONDITION, "NOT_CONFIRMED",
                    f"nothing destroyed: set `confirm` to {expected!r} to destroy these databases for good")


async def destroy(shards: Shards, account: str, request: pb.DestroyDatabasesRequest, listed: set[str],
                  timeout: float) -> pb.DestroyDatabasesResponse:
    """Destroy each tenant's database of the name that `listed` holds, in the order asked."""
    answer = pb.DestroyDatabasesResponse()
    for tenant in request.tenants:
        if tenant not in listed:
            answer.missing.append(tenant)
            continue
        db = database_id(account, request.name, tenant)
        context = shard_pb2.Context(database_id=db, account=account, name=request.name, tenant=tenant,
                                    claims_json="{}", destroy=True)
        message = shard_request(context_field(context.SerializeToString()), _NO_OP)
        refusal = await call_owner(shards, db, shard_pb2.FORWARDED_METHOD_EXECUTE, message, timeout,
                                   "call again: the databases already destroyed are reported missing")
        if refusal is not None:
            raise Fault(grpc.StatusCode.UNAVAILABLE if refusal.reason == "SHARD_UNAVAILABLE" else
                        grpc.StatusCode.FAILED_PRECONDITION, refusal.reason,
                        f"tenant {tenant!r} was not destroyed ({refusal.message}); {len(answer.destroyed)} before it "
                        "were", tenant=tenant, destroyed=len(answer.destroyed))
        answer.destroyed.append(tenant)
    return answer
