"""`loot up` supervises plain processes: none of them outlives it, even when it is SIGKILLed."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loot.serving import parse_listening

pytestmark = pytest.mark.cluster  # runs `loot up`


def test_servers_exit_when_loot_up_is_killed(tmp_path: Path) -> None:
    up = subprocess.Popen([sys.executable, "-m", "loot", "up", "--port", "0", "--shards", "1", "--data", str(tmp_path)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    addresses = []
    try:
        for line in up.stdout:  # ends if `loot up` exits
            listening = parse_listening(line.split("| ", 1)[-1])
            if listening:
                addresses.append(listening[2])
            if len(addresses) == 2:
                break
        assert len(addresses) == 2, "a shard and a router started"
        up.send_signal(signal.SIGKILL)
        up.wait(10)
        deadline = time.monotonic() + 15
        while any(healthy(address) for address in addresses):
            assert time.monotonic() < deadline, "a server outlived its supervisor"
            time.sleep(0.2)
    finally:
        up.kill()
        up.wait()


def healthy(address: str) -> bool:
    probe = subprocess.run([sys.executable, "-m", "loot", "health", address, "--timeout", "1"],
                           capture_output=True, timeout=30)
    return probe.returncode == 0
