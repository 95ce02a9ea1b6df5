"""One request's transaction with access control around it (docs/shard.md#requests):
`before`, the request's SQL (or `instead`), `after`, one transaction, all or nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import apsw

from loot.shard.access.enforcer import Enforcer, for_connection
from loot.shard.sql_errors import fault_from_sqlite

T = TypeVar("T")


def run_request(conn: apsw.Connection, *, claims_json: str, readonly: bool, before: str, after: str,
                statements: Callable[[Enforcer], T]) -> T:
    """`statements(access)` inside one transaction, between the privileged `before` and `after`."""
    access = for_connection(conn)
    with access.request(claims_json, readonly):
        access.control("BEGIN IMMEDIATE")
        try:
            access.refresh()
            if before:
                _privileged_script(access, before, "before")
                access.refresh()  # `before` may have changed the policy
            result = statements(access)
            if after:
                _privileged_script(access, after, "after")
            access.control("COMMIT")
        except BaseException:
            if not conn.get_autocommit():
                access.control("ROLLBACK")
            raise
    return result


def _privileged_script(access: Enforcer, script: str, claim: str) -> None:
    try:
        access.run_script(script)
    except apsw.Error as error:
        raise access.fault(error, claim=claim) or fault_from_sqlite(error, claim=claim)
