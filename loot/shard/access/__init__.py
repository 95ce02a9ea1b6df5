"""Row-level access control (SPEC §5): filters, rules and privileged SQL, enforced
by SQLite itself through per-connection TEMP views and triggers."""

from loot.shard.access.enforcer import Enforcer, for_connection
from loot.shard.access.request import run_request

__all__ = ["Enforcer", "for_connection", "run_request"]
