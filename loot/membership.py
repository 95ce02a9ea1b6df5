"""Cluster membership: the shard names (and, for routers, their addresses).

One value serves every node, e.g. `LOOT_SHARDS=shard-0=10.0.0.5:7071,shard-1=10.0.0.6:7071`.
Shards only need the names (to know what they own), so `shard-0,shard-1` is valid too.
"""

from __future__ import annotations


def parse_members(text: str) -> dict[str, str]:
    """{name: address} from `name[=host:port],...`; address is "" when not given."""
    members: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, address = item.partition("=")
        if not name or name in members:
            raise ValueError(f"bad shard list {text!r}: each entry is name[=host:port], names unique")
        members[name] = address
    if not members:
        raise ValueError("the shard list is empty")
    return members


def format_members(members: dict[str, str]) -> str:
    return ",".join(f"{name}={address}" if address else name for name, address in members.items())
