"""Cluster membership: an epoch plus the shard names (and, for routers, their addresses; for clients that
route each call straight to its shard, their public addresses).

Two ways to give it, the same on every node (docs/rebalancing.md):
- `--shards shard-0=10.0.0.5:7071,shard-1=10.0.0.6:7071` (LOOT_SHARDS): fixed, epoch 0.
  Shards only need the names, so `shard-0,shard-1` is valid too.
  `--public-shards shard-0=db0.example.com:7081,...` adds the shards' public addresses (Topology).
- `--membership FILE` (LOOT_MEMBERSHIP): JSON `{"epoch": N, "shards": {"shard-0": "host:port", ...}}`,
  optionally with `"public": {"shard-0": "host:port", ...}`,
  reloaded without restart on SIGHUP and when the file changes (polled, since a Kubernetes
  ConfigMap is updated in place by swapping a symlink, which no inotify watch on the file sees).
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from loot.json_files import write_json
from loot.ring import Ring
from loot.settings import add_flag
from loot.reloading import FileChanges, watch

log = logging.getLogger("loot.membership")
EPOCH_HEADER = "loot-epoch"  # router -> shard: the epoch the router routed under


@dataclass(frozen=True)
class Membership:
    epoch: int
    shards: dict[str, str]  # name -> address ("" when not given)
    public: dict[str, str] = field(default_factory=dict)  # name -> public address, for clients (docs/clients.md)
    ring: Ring = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ring", Ring(self.shards))


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


def parse_epoch(text: str) -> int:
    """An epoch another node sent (header or refusal metadata); -1 when absent or malformed."""
    return int(text) if text.isdigit() else -1


def format_members(members: dict[str, str]) -> str:
    return ",".join(f"{name}={address}" if address else name for name, address in members.items())


def parse_membership(text: str) -> Membership:
    """A membership file's content; ValueError says what is wrong with it."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"not JSON: {error}") from None
    if not isinstance(document, dict) or not {"epoch", "shards"} <= set(document) <= {"epoch", "shards", "public"}:
        raise ValueError('expected {"epoch": N, "shards": {"name": "host:port", ...}} (and optionally "public")')
    epoch, shards, public = document["epoch"], document["shards"], document.get("public", {})
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        raise ValueError("`epoch` must be a non-negative integer")
    if not isinstance(shards, dict) or not shards or not all(
            isinstance(name, str) and name and isinstance(address, str) for name, address in shards.items()):
        raise ValueError("`shards` must map each shard's name to its address (a string, may be empty)")
    if not isinstance(public, dict) or not all(name in shards and isinstance(address, str)
                                               for name, address in public.items()):
        raise ValueError("`public` must map shard names (of `shards`) to their public addresses")
    return Membership(epoch, dict(shards), dict(public))


def write_membership(path: Path, membership: Membership) -> None:
    """Replace the file atomically, as a ConfigMap update does, so a reader never sees half of it."""
    document = {"epoch": membership.epoch, "shards": membership.shards}
    if membership.public:
        document["public"] = membership.public
    write_json(path, document, indent=2)


class MembershipSource:
    """The current membership, and where to reload it from (None: fixed by --shards)."""

    def __init__(self, current: Membership, path: Path | None = None):
        self.current = current
        self.path = path
        self._changes = FileChanges(path) if path else None
        self._listeners: list[Callable[[Membership], None]] = []

    @classmethod
    def from_file(cls, path: Path) -> MembershipSource:
        try:
            return cls(parse_membership(path.read_text()), path)
        except (OSError, ValueError) as error:
            raise SystemExit(f"loot: cannot read membership file {path}: {error}") from None

    def on_change(self, listener: Callable[[Membership], None]) -> None:
        """Call `listener` with each new membership before it takes effect; ValueError vetoes it."""
        self._listeners.append(listener)

    def reload(self) -> bool:
        """Read the file again if it changed; True when a new membership took effect.
        A bad file or an older epoch is logged and ignored: the node keeps serving what it had."""
        if self._changes is None or not self._changes.changed():
            return False
        try:
            loaded = parse_membership(self.path.read_text())
        except (OSError, ValueError) as error:
            log.warning("membership file %s not reloaded: %s", self.path, error)
            return False
        if loaded.epoch < self.current.epoch or loaded == self.current:
            if loaded.epoch < self.current.epoch:
                log.warning("membership file %s has epoch %d, older than %d; ignored",
                            self.path, loaded.epoch, self.current.epoch)
            return False
        try:
            for listener in self._listeners:  # before the switch: a router opens its channels first
                listener(loaded)
        except ValueError as error:
            log.warning("membership file %s not reloaded: %s", self.path, error)
            return False
        self.current = loaded
        log.info("membership epoch %d: %s", loaded.epoch, format_members(loaded.shards))
        return True

    def start_watching(self, poll_seconds: float) -> None:
        """Reload on SIGHUP and, when poll_seconds > 0, whenever the file changes.
        Needs the running loop; asyncio.run cancels the poller when the server's main returns."""
        if self.path is None:
            return
        watch(self.reload, poll_seconds)


def add_membership_flags(parser: argparse.ArgumentParser, shards_help: str) -> None:
    add_flag(parser, "--shards", help=f"fixed membership (epoch 0): {shards_help}, comma-separated")
    add_flag(parser, "--public-shards", help="with --shards: each shard's public address (name=host:port, "
                                             "comma-separated), told to clients that route directly (docs/clients.md)")
    add_flag(parser, "--membership", help='membership file, reloaded on change or SIGHUP: '
                                          '{"epoch": N, "shards": {"name": "host:port", ...}}')
    add_flag(parser, "--membership-poll", default=2.0, type=float,
             help="seconds between checks of the membership file for changes (0 = only on SIGHUP)")


def membership_from_arguments(args: argparse.Namespace, role: str) -> MembershipSource:
    if bool(args.shards) == bool(args.membership):
        raise SystemExit(f"loot {role} needs exactly one of --shards (LOOT_SHARDS) and --membership (LOOT_MEMBERSHIP)")
    if args.membership:
        return MembershipSource.from_file(Path(args.membership))
    shards = parse_members(args.shards)
    public = parse_members(args.public_shards) if args.public_shards else {}
    if set(public) - set(shards):
        raise SystemExit(f"loot {role}: --public-shards names shards not in --shards: {', '.join(set(public) - set(shards))}")
    return MembershipSource(Membership(0, shards, public))
