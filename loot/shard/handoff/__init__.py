"""Moving databases to their new owner after a membership change (docs/rebalancing.md §5)."""
