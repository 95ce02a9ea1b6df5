"""The Python SDK: `from loot import Key, Client, AsyncClient, LootError`."""
