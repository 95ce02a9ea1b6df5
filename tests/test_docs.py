"""Every code sample in README.md and docs/ runs.

`python` blocks of one page run in order as one script; `sh` blocks of one page
run in order in one shell, in one scratch directory. Both talk to a real
cluster: "127.0.0.1:7070" in a sample means that cluster, "127.0.0.1:7080"
(`loot up`'s HTTP port) its HTTP port, and LOOT_ROUTER points `loot` at it.
Two kinds of line are set-up the test environment has already done, so they
are left out rather than run: `pip install …` (the package is installed) and
`loot up` (the cluster fixture is up). `console` blocks show
commands for places this machine cannot reach (Docker, Kubernetes) or a
transcript; they are not samples to run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from loot.cli.local_cluster import LocalCluster
from loot.cli.main import parser
from tests.conftest import start_cluster

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", re.S | re.M)
SETUP = re.compile(r"^\s*(pip install\b.*|loot up\b.*)$", re.M)


def blocks(page: Path, language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(page.read_text()) if lang == language]


def samples(language: str) -> list[Path]:
    return [page for page in PAGES if blocks(page, language)]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """The conftest cluster, with the router's HTTP port on (docs/http.md's samples call it)."""
    cluster = start_cluster(tmp_path_factory.mktemp("docs"), http_port=0)
    yield cluster
    cluster.stop()


def run(argv: list[str], script: str, cluster, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "LOOT_ROUTER": cluster.address,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    script = script.replace("127.0.0.1:7070", cluster.address).replace("127.0.0.1:7080", cluster.http.split("://")[1])
    return subprocess.run(argv, input=script, text=True, capture_output=True, cwd=cwd, env=env, timeout=120)


@pytest.mark.parametrize("page", samples("python"), ids=lambda p: p.name)
def test_python_samples_run(page: Path, cluster, tmp_path: Path) -> None:
    if blocks(page, "sh"):  # a page's Python may use what its shell samples made (key.json)
        assert run(["bash", "-e"], SETUP.sub("", "\n".join(blocks(page, "sh"))), cluster, tmp_path).returncode == 0
    done = run([sys.executable, "-"], "\n".join(blocks(page, "python")), cluster, tmp_path)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("page", samples("sh"), ids=lambda p: p.name)
def test_shell_samples_run(page: Path, cluster, tmp_path: Path) -> None:
    done = run(["bash", "-e", "-o", "pipefail"], SETUP.sub("", "\n".join(blocks(page, "sh"))), cluster, tmp_path)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"


def test_there_are_samples() -> None:
    assert len(samples("python")) >= 2 and len(samples("sh")) >= 2


KEY_COMMAND = re.compile(r"\bloot (keygen|token|sql|shell|describe)\b([^\n)|;#]*)")


def _flag(args: str, flag: str) -> str | None:
    found = re.search(rf"{flag}[ =](\S+)", args)
    return found[1] if found else None


def test_commands_read_the_key_files_the_docs_make() -> None:
    """Read in order, the pages make one set of keys: a command given no --key reads the file
    `loot keygen` writes by default, so both defaults must be the file the docs make."""
    cli = parser()  # the CLI's own defaults, not copies of them (token, sql, shell, describe share --key)
    default_out, default_key = cli.parse_args(["keygen"]).out, cli.parse_args(["shell"]).key
    written, read = set(), set()
    for page in PAGES:
        for language, body in FENCE.findall(page.read_text()):
            for command, args in KEY_COMMAND.findall(body.replace("\\\n", " ")):
                if command == "keygen":
                    written.add(_flag(args, "--out") or default_out)
                elif "--token" not in args:
                    read.add((_flag(args, "--key") or default_key, page.name))
    assert written and read
    assert [(file, page) for file, page in read if file not in written] == []
