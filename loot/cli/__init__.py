"""The `loot` command."""
