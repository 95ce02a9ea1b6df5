"""The `loot` command as a person uses it: real subprocesses against a real cluster."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from jose import jwt

from loot.cli.main import COMMANDS
from tests.schemas import open_table

pytestmark = pytest.mark.cluster  # every test runs the `loot` command as a subprocess


def loot(*args: str, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "loot", *args], input=stdin, capture_output=True, text=True,
                          cwd=cwd, timeout=60)


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "key.json"
    made = loot("keygen", "--out", str(path))
    assert made.returncode == 0 and "account" in made.stdout
    return path


def target(cluster, key_file: Path, tenant: str) -> list[str]:
    return ["--router", cluster.address, "--key", str(key_file), "--db", "cli", "--tenant", tenant]


def test_sql_round_trip_as_table_and_json(cluster, key_file: Path) -> None:
    where = target(cluster, key_file, "table")
    inserted = loot("sql", *where, "--schema", open_table("CREATE TABLE notes (body TEXT, n INTEGER)", "notes"),
                    "INSERT INTO notes VALUES (?, ?)", "hello", "7")
    assert inserted.returncode == 0, inserted.stderr
    assert "1 written" in inserted.stdout
    shown = loot("sql", *where, "SELECT body, n FROM notes")
    assert shown.stdout.splitlines()[:3] == ["body  | n", "------+--", "hello | 7"]
    as_json = json.loads(loot("sql", *where, "--json", "SELECT body, x'00ff' AS b FROM notes").stdout)
    assert as_json["rows"] == [["hello", {"base64": "AP8="}]]


def test_shell_reads_multiline_statements_from_a_pipe(cluster, key_file: Path) -> None:
    where = target(cluster, key_file, "shell")
    script = "SELECT 1\n  + 1 AS two;\nSELECT nope;\nSELECT 'still here';\n.quit\nSELECT 'not run';\n"
    ran = loot("shell", *where, stdin=script)
    assert ran.returncode == 0
    assert "two" in ran.stdout and "still here" in ran.stdout and "not run" not in ran.stdout
    assert "no such column: nope" in ran.stderr


def test_token_carries_the_flags(key_file: Path) -> None:
    minted = loot("token", "--key", str(key_file), "--db", "app", "--tenant", "t", "--readonly", "--before",
                  "SELECT 1", "--claim", "user.id=42", "--claim", "user.name=ann", "--ttl", "60")
    claims = jwt.get_unverified_claims(minted.stdout.strip())
    assert claims["db"] == {"name": "app", "tenant": "t"}
    assert claims["readonly"] is True and claims["before"] == "SELECT 1"
    assert claims["user"] == {"id": 42, "name": "ann"} and claims["exp"] - claims["iat"] == 60


def test_ready_token_flag(cluster, key_file: Path) -> None:
    token = loot("token", "--key", str(key_file), "--db", "cli", "--tenant", "ready").stdout.strip()
    ran = loot("sql", "--router", cluster.address, "--token", token, "SELECT 40 + 2")
    assert "42" in ran.stdout


@pytest.mark.parametrize("args, message", [
    (["sql", "--key", "missing.json", "--db", "a", "--tenant", "b", "SELECT 1"], "no key at missing.json"),
    (["sql", "--router", "127.0.0.1:1", "--token", "x.y.z", "SELECT 1"], "UNAVAILABLE"),
    (["token", "--db", "a"], "--db NAME --tenant TENANT"),
    (["token", "--key", "K", "--db", "a", "--tenant", "b", "--claim", "novalue"], "PATH=VALUE"),
    (["sql", "--key", "K", "--db", "a", "--tenant", "b", "--ttl", "30", "SELECT 1"], "--ttl 30: ttl must exceed 60"),
    (["mcp", "--key", "K", "--db", "a", "--tenant", "b", "--ttl", "30"], "--ttl 30: ttl must exceed 60"),
])
def test_user_mistakes_are_one_line_without_traceback(tmp_path: Path, key_file: Path, args, message) -> None:
    args = [str(key_file) if a == "K" else a for a in args]
    ran = loot(*args, cwd=tmp_path)
    assert ran.returncode != 0
    assert message in ran.stderr and "Traceback" not in ran.stderr
    assert len(ran.stderr.strip().splitlines()) == 1


def test_sql_errors_are_one_line(cluster, key_file: Path) -> None:
    ran = loot("sql", *target(cluster, key_file, "errors"), "SELEC 1")
    assert ran.returncode == 1 and ran.stderr.startswith("loot: INVALID_ARGUMENT") and "Traceback" not in ran.stderr


def test_keygen_refuses_to_overwrite(key_file: Path) -> None:
    again = loot("keygen", "--out", str(key_file))
    assert again.returncode != 0 and "--force" in again.stderr


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_is_there_for_every_command(command: str) -> None:
    shown = loot(*([command] if command else []), "--help")
    assert shown.returncode == 0 and "usage: loot" in shown.stdout


PEM = b"""-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIGFY2UtHDTSrb+Uu6XBuzLPHD2aUaPcMQ8DOt2hhMl4q
-----END PRIVATE KEY-----
"""


@pytest.mark.parametrize("name, content, said", [
    ("notes.json", b"hello\n", "is not JSON"),
    ("key.pem", PEM, "is a PEM file"),
    ("binary.json", b"\x89PNG\r\n\xff\xfe", "is not JSON"),
    ("list.json", b"[1, 2]", "holds JSON but not an object"),
    ("public.json", b'{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}',
     "not a private P-256 (ES256) or Ed25519 (EdDSA) JWK"),
    ("a-directory", None, "is a directory"),
    ("huge.json", b" " * 100_000 + b"{}", "is larger than 65536 bytes"),
])
def test_a_bad_key_file_says_what_a_key_file_is(tmp_path: Path, name: str, content: bytes | None, said: str) -> None:
    path = tmp_path / name
    path.mkdir() if content is None else path.write_bytes(content)
    ran = loot("token", "--key", str(path), "--db", "app", "--tenant", "t")
    assert ran.returncode != 0 and not ran.stdout and "Traceback" not in ran.stderr
    assert said in ran.stderr and "loot keygen --out" in ran.stderr, ran.stderr
    assert ran.stderr.count(str(path)) == 1 and len(ran.stderr.splitlines()) == 1


def test_keygen_into_a_directory_is_one_line(tmp_path: Path) -> None:
    ran = loot("keygen", "--out", str(tmp_path), "--force")
    assert ran.returncode != 0 and "Traceback" not in ran.stderr and "--out takes a file path" in ran.stderr


@pytest.mark.parametrize("ttl", ["0", "-60", "soon"])
def test_token_ttl_must_be_positive(key_file: Path, ttl: str) -> None:
    ran = loot("token", "--key", str(key_file), "--db", "app", "--tenant", "t", "--ttl", ttl)
    assert ran.returncode != 0 and not ran.stdout and "every token expires" in ran.stderr
