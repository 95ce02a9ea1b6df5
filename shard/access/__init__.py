"""Row-level access control (docs/access.md): filters, rules and privileged SQL, enforced
by SQLite itself through per-connection TEMP views and triggers."""

from shard.access.enforcer import Enforcer, for_connection
from shard.access.request import run_request

__all__ = ["Enforcer", "for_connection", "run_request"]
