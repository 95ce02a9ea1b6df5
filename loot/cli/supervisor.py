"""Keeping a local cluster's processes running, as an operator's process manager would: a router or
shard that exits without being asked to is started again on its old port after a growing delay,
while the others go on serving; one that keeps exiting stops the cluster, saying why
(docs/operations.md, "When a process crashes")."""

from __future__ import annotations

import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from loot.cli.local_cluster import Child, LocalCluster


@dataclass(frozen=True)
class RestartPolicy:
    max_restarts: int = 5  # exits of one process within `window` seconds that are restarted
    window: float = 60.0
    first_delay: float = 0.5
    max_delay: float = 8.0

    def delay(self, exits: int) -> float:
        """Seconds to wait before restarting a process that exited `exits` times within the window."""
        return min(self.first_delay * 2 ** (exits - 1), self.max_delay)


class GaveUp(Exception):
    """A process exited more often than the policy restarts; the message says which and how often."""


def exit_reason(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


class Supervisor:
    """Call `check` often, from the thread that changes the cluster's processes (`loot scale`
    included): a process the cluster no longer lists (a drained shard, stopped on purpose) is
    forgotten, never restarted."""

    def __init__(self, cluster: LocalCluster, policy: RestartPolicy, say: Callable[[str], None]):
        self.cluster = cluster
        self.policy = policy
        self.say = say
        self._exits: dict[str, deque[float]] = {}  # name -> when it exited, within the window
        self._due: dict[str, float] = {}  # name -> when to start it again
        self._starting: set[str] = set()  # started again, not listening yet

    def check(self) -> None:
        """Notice exits, restart what is due, report restarts that came up; GaveUp past the policy."""
        now = time.monotonic()
        children = {child.name: child for child in self.cluster.children()}
        for gone in set(self._due) - set(children):
            del self._due[gone]
        for name, child in children.items():
            if name in self._due:
                if now >= self._due[name]:
                    del self._due[name]
                    self.cluster.restart(name)
                    self._starting.add(name)
            elif not child.alive():
                self._exited(child, now)
            elif name in self._starting and child.address:
                self._starting.discard(name)
                self.say(f"loot: {name} restarted, listening on {child.address}")

    def _exited(self, child: Child, now: float) -> None:
        self._starting.discard(child.name)
        exits = self._exits.setdefault(child.name, deque())
        exits.append(now)
        while exits[0] < now - self.policy.window:
            exits.popleft()
        reason = exit_reason(child.process.returncode)
        if child.process.returncode > 0 and child.last_line:
            reason += f", last words: {child.last_line}"  # usually why it could not start
        if len(exits) > self.policy.max_restarts:
            raise GaveUp(f"{child.name} exited {len(exits)} times within {self.policy.window:g}s "
                         f"(last: {reason}); stopping the cluster")
        delay = self.policy.delay(len(exits))
        self._due[child.name] = now + delay
        self.say(f"loot: {child.name} exited ({reason}); restarting it in {delay:g}s "
                 f"(exit {len(exits)} of {self.policy.max_restarts} restarted within {self.policy.window:g}s)")
