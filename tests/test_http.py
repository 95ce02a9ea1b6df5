"""The HTTP port (docs/http.md): loot.v1.Database over Connect (JSON, binary) and gRPC-Web, through a real
router, with the same tokens, errors, request ids and metrics as the gRPC port."""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from google.rpc import error_details_pb2

from loot.cli.local_cluster import LocalCluster
from loot.tokens import Key
from loot.v1 import database_pb2 as pb
from tests.conftest import start_cluster

SCHEMA = """CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
INSERT INTO _filters VALUES ('notes', 'all', 'true');
INSERT INTO _rules VALUES ('notes', 'write', 'all', 'true');"""
EXECUTE = "/loot.v1.Database/Execute"
pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def http_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    cluster = start_cluster(tmp_path_factory.mktemp("http"), shards=1, http_port=0)
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def web(http_cluster: LocalCluster) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=http_cluster.http, timeout=30) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def error_info(body: dict) -> error_details_pb2.ErrorInfo:
    """The ErrorInfo among a Connect error's details."""
    (detail,) = [d for d in body["details"] if d["type"] == "google.rpc.ErrorInfo"]
    return error_details_pb2.ErrorInfo.FromString(base64.b64decode(detail["value"] + "=="))


def grpc_web_frame(message: bytes, flags: int = 0) -> bytes:
    return struct.pack(">BI", flags, len(message)) + message


def grpc_web_frames(body: bytes) -> list[tuple[int, bytes]]:
    frames = []
    while body:
        flags, length = struct.unpack(">BI", body[:5])
        frames.append((flags, body[5:5 + length]))
        body = body[5 + length:]
    return frames


def test_connect_json_execute(web: httpx.Client, key: Key) -> None:
    token = key.token("http", "json", schema=SCHEMA)
    written = web.post(EXECUTE, headers=bearer(token),
                       json={"statement": {"sql": "INSERT INTO notes (body) VALUES (?)", "params": [{"text": "hi"}]}})
    assert written.status_code == 200, written.text
    assert written.headers["content-type"] == "application/json"
    assert written.json()["result"]["rowsWritten"] == "1"
    assert written.json()["schemaChanges"]
    read = web.post(EXECUTE, headers=bearer(token), json={"statement": {"sql": "SELECT id, body FROM notes"}})
    assert read.json()["result"]["rows"] == [{"values": [{"integer": "1"}, {"text": "hi"}]}]
    assert read.headers["trailer-x-request-id"]


def test_connect_binary_execute(web: httpx.Client, key: Key) -> None:
    request = pb.ExecuteRequest(statement=pb.Statement(sql="SELECT ? + 1", params=[pb.Value(integer=41)]))
    answer = web.post(EXECUTE, headers={**bearer(key.token("http", "binary")), "content-type": "application/proto"},
                      content=request.SerializeToString())
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/proto"
    assert pb.ExecuteResponse.FromString(answer.content).result.rows[0].values[0].integer == 42


def test_grpc_web_execute(web: httpx.Client, key: Key) -> None:
    request = pb.ExecuteRequest(statement=pb.Statement(sql="SELECT 'web'"))
    answer = web.post(EXECUTE, headers={**bearer(key.token("http", "grpc-web")),
                                        "content-type": "application/grpc-web+proto", "x-grpc-web": "1"},
                      content=grpc_web_frame(request.SerializeToString()))
    assert answer.status_code == 200
    (_, message), (flags, trailers) = grpc_web_frames(answer.content)
    assert pb.ExecuteResponse.FromString(message).result.rows[0].values[0].text == "web"
    assert flags & 0x80 and b"grpc-status:0" in trailers.replace(b" ", b"")


def test_error_carries_its_reason(web: httpx.Client, key: Key) -> None:
    answer = web.post(EXECUTE, headers=bearer(key.token("http", "errors")), json={"statement": {"sql": "SELECT * FROM nope"}})
    assert answer.status_code == 400
    body = answer.json()
    assert body["code"] == "invalid_argument" and "nope" in body["message"]
    assert error_info(body).domain == "loot"
    assert error_info(body).reason


def test_missing_token_is_unauthenticated(web: httpx.Client) -> None:
    answer = web.post(EXECUTE, json={"statement": {"sql": "SELECT 1"}})
    assert answer.status_code == 401
    assert answer.json()["code"] == "unauthenticated"
    assert error_info(answer.json()).reason == "MISSING_TOKEN"


def test_page_at_root(web: httpx.Client) -> None:
    answer = web.get("/")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
