"""Settings precedence: flag > environment > config file > default (docs/operations.md)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from loot.cli.main import parser
from loot.settings import add_flag, resolve
from loot.shard import limits

CONFIG = """
log-format = "json"
forward-timeout = 12.5   # a router setting at top level: the shard ignores it
port = 9000

[router]
port = 9100

[shard]
data = "/srv/loot"
"""


def settings(monkeypatch: pytest.MonkeyPatch, argv: list[str], env: dict[str, str] | None = None):
    for name in ("LOOT_PORT", "LOOT_LOG_FORMAT", "LOOT_FORWARD_TIMEOUT", "LOOT_DATA", "LOOT_CONFIG", "LOOT_SHARDS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    args = parser().parse_args(argv)
    return resolve(args, args.command)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "loot.toml"
    path.write_text(CONFIG)
    return path


def test_defaults_without_flag_env_or_file(monkeypatch) -> None:
    args = settings(monkeypatch, ["router"])
    assert (args.port, args.log_format, args.forward_timeout, args.metrics_port) == (7070, "text", 30.0, None)


def test_file_beats_default_and_role_table_beats_top_level(monkeypatch, config: Path) -> None:
    router = settings(monkeypatch, ["router", "--config", str(config)])
    assert (router.port, router.log_format, router.forward_timeout) == (9100, "json", 12.5)
    shard = settings(monkeypatch, ["shard"], {"LOOT_CONFIG": str(config)})
    assert (shard.port, shard.data, shard.log_format) == (9000, "/srv/loot", "json")


def test_environment_beats_file_and_flag_beats_environment(monkeypatch, config: Path) -> None:
    env = {"LOOT_CONFIG": str(config), "LOOT_PORT": "9200", "LOOT_FORWARD_TIMEOUT": "3"}
    from_env = settings(monkeypatch, ["router"], env)
    assert (from_env.port, from_env.forward_timeout, from_env.log_format) == (9200, 3.0, "json")
    from_flag = settings(monkeypatch, ["router", "--port", "9300"], env)
    assert from_flag.port == 9300


@pytest.mark.parametrize("text, message", [
    ("[router]\nprot = 1\n", "unknown setting(s)"),
    ("colour = 'blue'\n", "unknown setting(s)"),
    ("[router]\ndata = '/x'\n", "unknown setting(s)"),  # a shard setting in the router's own table
    ("port = 'seventy'\n", "bad value 'seventy'"),
    ("router = 3\n", "must be a table"),
    ("port = \n", "cannot read config file"),
])
def test_bad_config_files_are_refused_clearly(monkeypatch, tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(SystemExit) as refused:
        settings(monkeypatch, ["router", "--config", str(path)])
    assert message in str(refused.value)


def test_bad_environment_value_names_the_variable(monkeypatch) -> None:
    with pytest.raises(SystemExit) as refused:
        settings(monkeypatch, ["router"], {"LOOT_PORT": "http"})
    assert "$LOOT_PORT" in str(refused.value)


def test_missing_config_file_is_refused(monkeypatch, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as refused:
        settings(monkeypatch, ["router", "--config", str(tmp_path / "nowhere.toml")])
    assert "cannot read config file" in str(refused.value)


def test_the_example_in_docs_operations_loads_for_both_roles(monkeypatch, tmp_path: Path) -> None:
    docs = (Path(__file__).parent.parent / "docs" / "operations.md").read_text()
    example = docs.split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "loot.toml"
    path.write_text(example)
    router = settings(monkeypatch, ["router", "--config", str(path)])
    shard = settings(monkeypatch, ["shard", "--config", str(path)])
    assert (router.port, router.forward_timeout, router.log_format, router.metrics_port) == (7070, 15.0, "json", 9100)
    assert (shard.port, shard.data, shard.shards) == (7071, "/var/lib/loot", "shard-0=10.0.0.5:7071,shard-1=10.0.0.6:7071")


def test_switches_and_empty_variables(monkeypatch, tmp_path: Path) -> None:
    def parse(argv: list[str]) -> argparse.Namespace:
        parser = argparse.ArgumentParser()
        add_flag(parser, "--verbose-things", action="store_true", help="a switch")
        add_flag(parser, "--port", default=1, type=int, help="a number")
        return resolve(parser.parse_args(argv), "router")

    monkeypatch.delenv("LOOT_CONFIG", raising=False)
    monkeypatch.setenv("LOOT_PORT", "")
    assert (parse([]).verbose_things, parse([]).port) == (False, 1), "an empty variable counts as unset"
    assert parse(["--verbose-things"]).verbose_things is True
    monkeypatch.setenv("LOOT_VERBOSE_THINGS", "yes")
    assert parse([]).verbose_things is True
    monkeypatch.setenv("LOOT_VERBOSE_THINGS", "perhaps")
    with pytest.raises(SystemExit, match="expected true or false"):
        parse([])


@pytest.mark.cluster  # starts `loot router`
@pytest.mark.parametrize("flag, value", [("--log-format", "xml"), ("--log-level", "loud")])
def test_bad_log_settings_stop_the_server_with_a_clear_message(monkeypatch, flag: str, value: str) -> None:
    env = {"LOOT_CLUSTER_SECRET": "a-test-secret-of-enough-length", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "loot", "router", "--shards", "s=127.0.0.1:1", "--port", "0",
                           flag, value], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 1 and f"{flag} must be one of" in done.stderr and "Traceback" not in done.stderr


def test_result_bytes_must_leave_a_response_room_in_one_grpc_message() -> None:
    def limits_with(result_bytes: int) -> limits.Limits:
        values = {field.name: getattr(limits.Limits(), field.name) for field in fields(limits.Limits)}
        return limits.from_arguments(argparse.Namespace(**{**values, "result_bytes": result_bytes}))

    assert limits_with(limits.MAX_RESULT_BYTES).result_bytes == limits.MAX_RESULT_BYTES
    with pytest.raises(SystemExit, match="at most"):
        limits_with(limits.MAX_RESULT_BYTES + 1)
