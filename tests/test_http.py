"""The HTTP port (docs/http.md): loot.v1.Database over Connect (JSON, binary) and gRPC-Web, through a real
router, with the same tokens, errors, request ids and metrics as the gRPC port."""

from __future__ import annotations

import base64
import re
import signal
import ssl
import struct
import time
from collections.abc import Iterator

import httpx
import pytest
from google.rpc import error_details_pb2, status_pb2

from loot.cli.local_cluster import LocalCluster
from loot.tokens import Key
from loot.v1 import database_pb2 as pb
from tests.certs import Authority
from tests.conftest import start_cluster
from tests.test_accounts_allowlist import router_metric
from tests.test_up import start_up

SCHEMA = """CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
INSERT INTO _filters VALUES ('notes', 'all', 'true');
INSERT INTO _rules VALUES ('notes', 'write', 'all', 'true');"""
EXECUTE = "/loot.v1.Database/Execute"
SELECT_1 = {"statement": {"sql": "SELECT 1"}}
pytestmark = pytest.mark.cluster


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


def grpc_web_status(answer: httpx.Response) -> dict[str, str]:
    """A gRPC-Web answer's status: in its trailer frame, or in its headers when it has no body."""
    frames = grpc_web_frames(answer.content)
    if not frames:
        return dict(answer.headers)
    flags, trailer = frames[-1]
    assert flags & 0x80, "no trailer frame"
    pairs = (line.split(":", 1) for line in trailer.decode().split("\r\n") if line)
    return {name.strip().lower(): value.strip() for name, value in pairs}


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
    (_, message), _ = grpc_web_frames(answer.content)
    assert pb.ExecuteResponse.FromString(message).result.rows[0].values[0].text == "web"
    assert grpc_web_status(answer)["grpc-status"] == "0"


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


def test_http2_cleartext(http_cluster: LocalCluster, key: Key) -> None:
    with httpx.Client(base_url=http_cluster.http, http1=False, http2=True, timeout=30) as h2c:
        answer = h2c.post(EXECUTE, headers=bearer(key.token("http", "h2c")), json={"statement": {"sql": "SELECT 2"}})
    assert answer.http_version == "HTTP/2"
    assert answer.json()["result"]["rows"] == [{"values": [{"integer": "2"}]}]


def test_batch_and_describe(web: httpx.Client, key: Key) -> None:
    token = key.token("http", "batch", schema=SCHEMA)
    statements = [{"sql": "INSERT INTO notes (body) VALUES (:b)", "namedParams": {"b": {"text": f"n{i}"}}} for i in range(3)]
    batch = web.post("/loot.v1.Database/Batch", headers=bearer(token), json={"statements": statements})
    assert [r["rowsWritten"] for r in batch.json()["results"]] == ["1", "1", "1"]
    described = web.post("/loot.v1.Database/Describe", headers=bearer(token), json={})
    assert [table["name"] for table in described.json()["tables"]] == ["notes"]


def test_a_failing_batch_names_its_statement(web: httpx.Client, key: Key) -> None:
    statements = [{"sql": "SELECT 1"}, {"sql": "SELECT * FROM missing"}]
    answer = web.post("/loot.v1.Database/Batch", headers=bearer(key.token("http", "batch-error")),
                      json={"statements": statements})
    assert answer.json()["code"] == "invalid_argument"
    assert error_info(answer.json()).metadata["statement_index"] == "1"


def test_grpc_web_error_carries_its_status_details(web: httpx.Client, key: Key) -> None:
    request = pb.ExecuteRequest(statement=pb.Statement(sql="SELECT * FROM nope"))
    answer = web.post(EXECUTE, headers={**bearer(key.token("http", "grpc-web-error")),
                                        "content-type": "application/grpc-web+proto"},
                      content=grpc_web_frame(request.SerializeToString()))
    trailers = grpc_web_status(answer)
    assert trailers["grpc-status"] == "3"  # INVALID_ARGUMENT
    status = status_pb2.Status.FromString(base64.b64decode(trailers["grpc-status-details-bin"] + "=="))
    info = error_details_pb2.ErrorInfo()
    status.details[0].Unpack(info)
    assert info.domain == "loot" and info.reason


def test_the_callers_request_id_comes_back_and_reaches_the_shard(http_cluster: LocalCluster, web: httpx.Client,
                                                                   key: Key) -> None:
    answer = web.post(EXECUTE, headers={**bearer(key.token("http", "ids")), "x-request-id": "http-test-id-1"},
                      json={"statement": {"sql": "SELECT 1"}})
    assert answer.headers["trailer-x-request-id"] == "http-test-id-1"

    def logged_by(process: str) -> bool:  # the processes' output arrives through a thread: wait for it
        return any(line.startswith(process) and "http-test-id-1" in line for line in http_cluster.sink.lines)

    deadline = time.monotonic() + 60
    while not (logged_by("router:") and logged_by("shard-")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert logged_by("router:") and logged_by("shard-"), "the request id in the router's and the owner shard's logs"


def test_http_calls_count_in_the_same_metrics(http_cluster: LocalCluster, web: httpx.Client, key: Key) -> None:
    sample = 'loot_requests_total{code="UNAUTHENTICATED",method="/loot.v1.Database/Execute"}'
    assert web.post(EXECUTE, json={"statement": {"sql": "SELECT 1"}}).status_code == 401
    before = router_metric(http_cluster, sample)
    assert web.post(EXECUTE, json={"statement": {"sql": "SELECT 1"}}).status_code == 401
    assert router_metric(http_cluster, sample) == before + 1


def test_transaction_is_not_served_and_says_so(web: httpx.Client, key: Key) -> None:
    unary = web.post("/loot.v1.Database/Transaction", headers=bearer(key.token("http", "tx")), json={})
    assert unary.json()["code"] == "unimplemented" and "Batch" in unary.json()["message"]
    envelope = struct.pack(">BI", 0, 2) + b"{}"
    streamed = web.post("/loot.v1.Database/Transaction", headers={**bearer(key.token("http", "tx")),
                                                                 "content-type": "application/connect+json"},
                        content=envelope)
    end = grpc_web_frames(streamed.content)[-1][1]
    assert b'"unimplemented"' in end and b"NOT_OVER_HTTP" not in end  # the reason travels base64-encoded
    assert "Batch" in end.decode()



def test_a_local_page_may_call_a_loopback_router(web: httpx.Client, key: Key) -> None:
    origin = "http://localhost:5173"
    preflight = web.options(EXECUTE, headers={"origin": origin, "access-control-request-method": "POST",
                                              "access-control-request-headers": "authorization, content-type"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == origin
    allowed = {h.strip() for h in preflight.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "connect-protocol-version", "connect-timeout-ms", "x-grpc-web"} <= allowed
    assert int(preflight.headers["access-control-max-age"]) > 0
    answer = web.post(EXECUTE, headers={**bearer(key.token("http", "cors")), "origin": origin}, json=SELECT_1)
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == origin
    assert "trailer-x-request-id" in answer.headers["access-control-expose-headers"]


def test_the_page_at_root_may_call_its_own_port(http_cluster: LocalCluster, key: Key) -> None:
    """A page's fetch to its own origin carries that origin: always allowed, whatever --cors-origin says."""
    own = http_cluster.http.replace("127.0.0.1", "localhost")
    with httpx.Client(base_url=own, timeout=30) as client:
        answer = client.post(EXECUTE, headers={**bearer(key.token("http", "own")), "origin": own},
                             json={"statement": {"sql": "SELECT 1"}})
    assert answer.status_code == 200


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """The HTTP port of a router given CORS origins and a rate limit of one call per account (for hours)."""
    env = {"LOOT_CORS_ORIGIN": "https://app.example", "LOOT_ACCOUNT_RATE": "0.0001", "LOOT_ACCOUNT_BURST": "1"}
    cluster = start_cluster(tmp_path_factory.mktemp("configured"), shards=1, http_port=0, env=env)
    with httpx.Client(base_url=cluster.http, timeout=30) as client:
        yield client
    cluster.stop()


def test_configured_origins_replace_the_loopback_default(configured: httpx.Client) -> None:
    def preflight(origin: str) -> int:
        return configured.options(EXECUTE, headers={"origin": origin, "access-control-request-method": "POST"}).status_code

    assert preflight("https://app.example") == 204
    assert preflight("http://localhost:5173") == 403


def test_the_accounts_rate_limit_counts_http_calls(configured: httpx.Client) -> None:
    key = Key.generate()
    assert configured.post(EXECUTE, headers=bearer(key.token("http", "rate")), json=SELECT_1).status_code == 200
    limited = configured.post(EXECUTE, headers=bearer(key.token("http", "rate")), json=SELECT_1)
    assert limited.status_code == 429 and limited.json()["code"] == "resource_exhausted"
    assert error_info(limited.json()).reason == "ACCOUNT_RATE_LIMITED"


def test_the_http_port_serves_tls_with_the_grpc_ports_settings(tmp_path, key: Key) -> None:
    """--tls-cert/--tls-key apply to the HTTP port too: HTTPS, and HTTP/2 by ALPN, as browsers speak it."""
    authority = Authority(tmp_path)
    cert, cert_key = authority.issue("server")
    env = {"LOOT_TLS_CERT": str(cert), "LOOT_TLS_KEY": str(cert_key), "LOOT_SHARD_TLS_CA": str(authority.ca_file)}
    cluster = start_cluster(tmp_path / "tls", shards=1, http_port=0, env=env)
    try:
        assert cluster.http.startswith("https://127.0.0.1:")
        trusted = ssl.create_default_context(cafile=str(authority.ca_file))
        with httpx.Client(base_url=cluster.http, verify=trusted, http2=True, timeout=30) as client:
            answer = client.post(EXECUTE, headers=bearer(key.token("http", "tls")), json={"statement": {"sql": "SELECT 3"}})
        assert answer.http_version == "HTTP/2"
        assert answer.json()["result"]["rows"] == [{"values": [{"integer": "3"}]}]
        with pytest.raises(httpx.HTTPError):  # plaintext to a TLS port
            httpx.post(cluster.http.replace("https:", "http:") + EXECUTE, json={}, timeout=30)
    finally:
        cluster.stop()


def test_loot_up_serves_http_and_prints_its_url(tmp_path, key: Key) -> None:
    process, _, _ = start_up(tmp_path)
    try:
        url = re.fullmatch(r"HTTP \(Connect, gRPC-Web, the playground\): (http://127\.0\.0\.1:\d+)/\n",
                           process.stdout.readline())[1]
        assert httpx.get(f"{url}/", timeout=30).status_code == 200
        origin = "http://localhost:8000"  # a local page: allowed by default on loopback
        answer = httpx.post(f"{url}{EXECUTE}", headers={**bearer(key.token("http", "up")), "origin": origin},
                            json={"statement": {"sql": "SELECT 'up'"}}, timeout=30)
        assert answer.json()["result"]["rows"] == [{"values": [{"text": "up"}]}]
        assert answer.headers["access-control-allow-origin"] == origin
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
