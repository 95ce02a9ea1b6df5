"""Row-level access control (docs/access.md): filters, rules and privileged SQL, enforced
by SQLite itself through per-connection TEMP views and triggers.

The package runs nothing when imported, so the schema engine can check a claim's policy
rows (policy_check.py) without loading the enforcer, which itself applies schemas."""
