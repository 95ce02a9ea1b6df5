"""The Node.js packages of the tests that run node (examples/node, tests/interop), installed by the
tests themselves so that the README's `pip install -e '.[test]' && pytest` passes on a fresh clone.

`npm ci` runs once per lock file: a marker in node_modules records the hash of the
package-lock.json it was installed from, so a changed lock file installs again and an
unchanged one costs nothing. A file lock keeps concurrent test runs from installing the
same directory at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

MARKER = ".installed-from-lock"
INSTALL_TIMEOUT = 600


def installed(project: Path) -> Path:
    """`project`'s node_modules, after `npm ci` if it is missing or made from another lock file."""
    npm = shutil.which("npm")
    assert npm, "node 20+ and npm are needed for the tests that run node"
    lock_hash = hashlib.sha256((project / "package-lock.json").read_bytes()).hexdigest()
    modules = project / "node_modules"
    lock_path = Path(tempfile.gettempdir()) / f"loot-npm-{hashlib.sha256(str(project).encode()).hexdigest()[:16]}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run installing it: wait, then find it done
        if _read(modules / MARKER) != lock_hash:
            done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--prefix", str(project)],
                                  capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
            assert done.returncode == 0, f"npm ci --prefix {project} failed:\n{done.stdout}\n{done.stderr}"
            (modules / MARKER).write_text(lock_hash)
    return modules


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None
