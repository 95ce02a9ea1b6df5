"""`loot mcp` as an agent's host meets it: the official MCP SDK's client, over stdio (it starts the
command) and over streamable HTTP (a running `loot mcp --transport http`), against a real cluster."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, MCPError, StdioServerParameters
from mcp_types import CallToolResult

from loot.tokens import Key, mint

pytestmark = pytest.mark.cluster  # every test runs `loot mcp` as a subprocess

SCHEMA = """CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL, stars INTEGER);
INSERT INTO _filters VALUES ('notes', 'all', 'true');
INSERT INTO _rules VALUES ('notes', 'write', 'polite', 'body <> ''rude''');"""
WRITES = ["execute", "insert_notes", "update_notes", "delete_notes"]
START_TIMEOUT = 120.0  # seconds: the machine is shared and may be busy


def loot_mcp(cluster, *args: str) -> list[str]:
    return [sys.executable, "-m", "loot", "mcp", "--router", cluster.address, *args]


def by_key(key_file: Path, tenant: str) -> list[str]:
    return ["--key", str(key_file), "--db", "mcp", "--tenant", tenant, "--schema", SCHEMA]


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mcp") / "key.json"
    Key.generate().save(path)
    return path


def over_stdio(argv: list[str], session: Callable[[Client], Awaitable[None]]) -> None:
    """Run `session` with a client that started `argv` as its stdio server."""
    async def main() -> None:
        async with Client(StdioServerParameters(command=argv[0], args=argv[1:])) as client:
            await session(client)
    anyio.run(main)


def over_http(url: str, session: Callable[[Client], Awaitable[None]]) -> None:
    async def main() -> None:
        async with Client(url) as client:
            await session(client)
    anyio.run(main)


@contextmanager
def http_server(argv: list[str]) -> Iterator[str]:
    """`loot mcp --transport http --port 0` running; yields the URL it printed."""
    process = subprocess.Popen([*argv, "--transport", "http", "--port", "0"], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    found: list[str] = []
    said: list[str] = []
    ready = threading.Event()

    def read() -> None:
        for line in process.stderr:
            said.append(line)
            if match := re.search(r"at (http://\S+)", line):
                found.append(match[1])
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert ready.wait(START_TIMEOUT) and found, "".join(said)
        yield found[0]
    finally:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def call(client: Client, name: str, arguments: dict[str, Any] | None = None) -> CallToolResult:
    return await client.call_tool(name, arguments or {})


async def tool_names(client: Client) -> list[str]:
    return [tool.name for tool in (await client.list_tools()).tools]


def error_of(result: CallToolResult) -> dict[str, Any]:
    assert result.is_error, result.content
    return result.structured_content["error"]


async def round_trip(client: Client) -> None:
    """List, describe, write through a per-table tool, read it back; a rule and a SQL error come back as
    tool errors with their reasons, and the server keeps serving after them."""
    assert await tool_names(client) == ["describe", "query", *WRITES]
    described = await call(client, "describe")
    assert not described.is_error and described.structured_content["tables"][0]["name"] == "notes"
    inserted = await call(client, "insert_notes", {"body": "hello", "stars": 3})
    assert not inserted.is_error and inserted.structured_content["rows_written"] == 1
    rows = await call(client, "query", {"sql": "SELECT body, stars FROM notes WHERE stars > ?", "params": [1]})
    assert rows.structured_content["columns"] == ["body", "stars"] and rows.structured_content["rows"] == [["hello", 3]]
    assert '"hello"' in rows.content[0].text  # the same JSON as text, for clients that read only text
    rude = error_of(await call(client, "insert_notes", {"body": "rude"}))
    assert (rude["code"], rude["reason"]) == ("PERMISSION_DENIED", "RULE_VIOLATED")
    bad_sql = await call(client, "query", {"sql": "SELECT nope FROM notes"})
    assert error_of(bad_sql)["reason"] == "SQL_ERROR" and "[SQL_ERROR]: no such column: nope" in bad_sql.content[0].text
    missing = error_of(await call(client, "insert_notes", {"stars": 1}))
    assert missing["reason"] == "BAD_ARGUMENTS" and "'body' is a required property" in missing["message"]
    updated = await call(client, "execute", {"sql": "UPDATE notes SET stars = stars + 1 RETURNING stars"})
    assert updated.structured_content["rows"] == [[4]]
    assert error_of(await call(client, "drop_everything"))["reason"] == "UNKNOWN_TOOL"
    misused = error_of(await call(client, "query", {"sql": "DELETE FROM notes"}))
    assert "query runs one SELECT; write with execute" in misused["message"]


def test_tools_over_stdio(cluster, key_file: Path) -> None:
    over_stdio(loot_mcp(cluster, *by_key(key_file, "stdio")), round_trip)


def test_tools_over_streamable_http(cluster, key_file: Path) -> None:
    with http_server(loot_mcp(cluster, *by_key(key_file, "http"))) as url:
        over_http(url, round_trip)


def test_a_read_only_token_gets_no_write_tools(cluster, key_file: Path) -> None:
    key = Key.load(key_file)
    writer = mint(key, "mcp", "readonly", schema=SCHEMA)
    reader = mint(key, "mcp", "readonly", readonly=True)

    async def write(client: Client) -> None:
        assert not (await call(client, "insert_notes", {"body": "kept"})).is_error

    async def read(client: Client) -> None:
        assert await tool_names(client) == ["describe", "query"]
        refused = error_of(await call(client, "insert_notes", {"body": "no"}))
        assert (refused["code"], refused["reason"]) == ("PERMISSION_DENIED", "READONLY")
        assert "read-only" in refused["message"]
        assert (await call(client, "query", {"sql": "SELECT body FROM notes"})).structured_content["rows"] == [["kept"]]
        misused = error_of(await call(client, "query", {"sql": "delete from notes"}))
        assert "query runs one SELECT; this token is read-only" in misused["message"]

    over_stdio(loot_mcp(cluster, "--token", writer), write)
    with http_server(loot_mcp(cluster, "--token", reader)) as url:
        over_http(url, read)


FIFTY = "(WITH RECURSIVE n(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM n WHERE v < 50) SELECT v FROM n)"


def test_results_are_bounded(cluster, key_file: Path) -> None:
    async def session(client: Client) -> None:
        many = await call(client, "query", {"sql": f"SELECT v FROM {FIFTY}"})
        assert many.structured_content["rows"] == [[1], [2], [3]] and many.structured_content["truncated"]
        assert "first 3 of more than 3 rows" in many.structured_content["note"]
        wide = await call(client, "query", {"sql": f"SELECT printf('%.400c', 'x') FROM {FIFTY} WHERE v <= 3"})
        assert len(wide.content[0].text) <= 1000 and len(wide.structured_content["rows"]) == 1
        assert "first 1 of 3 rows" in wide.structured_content["note"]

    over_stdio(loot_mcp(cluster, *by_key(key_file, "bounded"), "--max-rows", "3", "--max-chars", "1000"), session)


def test_it_keeps_serving_when_the_router_goes(own_cluster, key_file: Path) -> None:
    """A call while the router is down is a tool error saying so, and listing tools an MCP error with the
    Loot error's text (not "Internal server error"): neither ends the server, which answers the next call."""
    async def session(client: Client) -> None:
        assert "insert_notes" in await tool_names(client)
        own_cluster.stop()
        assert error_of(await call(client, "query", {"sql": "SELECT 1"}))["code"] == "UNAVAILABLE"
        with pytest.raises(MCPError, match="UNAVAILABLE"):
            await client.list_tools()
        assert (await call(client, "describe")).is_error

    over_stdio(loot_mcp(own_cluster, *by_key(key_file, "down")), session)


@pytest.mark.parametrize("token, said", [
    ("not-a-token", "UNAUTHENTICATED ["),
    (mint(Key.generate(), "mcp", "t", ttl=1, now=1_000_000), "UNAUTHENTICATED [TOKEN_EXPIRED]"),
])
def test_a_bad_token_stops_it_at_startup_with_the_reason(cluster, token: str, said: str) -> None:
    started = subprocess.run(loot_mcp(cluster, "--token", token), stdin=subprocess.DEVNULL, capture_output=True,
                             text=True, timeout=START_TIMEOUT)
    assert started.returncode != 0 and started.stderr.startswith(f"loot: {said}"), started.stderr
    assert "Traceback" not in started.stderr


def test_without_a_database_it_says_which_flags(cluster) -> None:
    started = subprocess.run(loot_mcp(cluster), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             timeout=START_TIMEOUT, env={k: v for k, v in os.environ.items() if k != "LOOT_TOKEN"})
    assert started.returncode != 0 and "--db NAME --tenant TENANT (or pass --token)" in started.stderr


@pytest.mark.parametrize("flags, said", [
    (["--port", "65536"], "argument --port: 65536 is not a port (0 to 65535)"),
    (["--max-rows", "0"], "argument --max-rows: '0' is not a whole number of at least 1"),
    (["--destroy"], "--destroy would delete the database after the first tool call"),
])
def test_flag_mistakes_are_refused_before_serving(flags: list[str], said: str) -> None:
    started = subprocess.run([sys.executable, "-m", "loot", "mcp", "--token", "x.y.z", *flags],
                             stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=START_TIMEOUT)
    assert started.returncode != 0 and said in started.stderr and "Traceback" not in started.stderr
