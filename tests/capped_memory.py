"""Holding a shard process to its memory budget in a test: the kernel refuses it address space past
the budget (RLIMIT_AS), so a shard that outgrew it would fail or die, and the test would see it."""

from __future__ import annotations

import resource
from pathlib import Path

MIB = 1024 * 1024


def status_kib(pid: int, field: str) -> int:
    """A `/proc/<pid>/status` field in KiB (VmHWM: the highest resident size so far)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


def cap_memory(pid: int, budget_mib: int) -> None:
    """Let the process's address space grow by no more than `budget_mib` past what it reserved at start
    (threads' stacks and malloc arenas are reserved, not used)."""
    cap = status_kib(pid, "VmSize") * 1024 + budget_mib * MIB
    resource.prlimit(pid, resource.RLIMIT_AS, (cap, cap))
