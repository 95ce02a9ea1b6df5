"""Hostile input on the HTTP port (docs/http.md): each gets its Connect or HTTP error with a message,
never a traceback or a 500, and the router goes on serving."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from loot.cli.local_cluster import LocalCluster
from loot.grpc_options import MAX_MESSAGE, MAX_METADATA
from loot.tokens import Key
from tests.test_http import EXECUTE, bearer, error_info

pytestmark = pytest.mark.cluster
SELECT = {"statement": {"sql": "SELECT 1"}}
EVIL = "https://evil.example"


@pytest.fixture(scope="module")
def web(http_cluster: LocalCluster) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=http_cluster.http, timeout=60) as client:
        yield client


@pytest.fixture(autouse=True)
def still_serving(http_cluster: LocalCluster, key: Key) -> Iterator[None]:
    """After each hostile request: a good one is answered, and nothing was logged as a crash."""
    logged = len(http_cluster.sink.lines)
    yield
    with httpx.Client(base_url=http_cluster.http, timeout=60) as fresh:
        answer = fresh.post(EXECUTE, headers=bearer(key.token("hostile", "after")), json=SELECT)
    assert answer.status_code == 200, answer.text
    crashes = [line for line in http_cluster.sink.lines[logged:] if "Traceback" in line or "ERROR" in line]
    assert not crashes, crashes


def refusal(answer: httpx.Response, status: int, code: str) -> str:
    """The Connect error `answer` is, checked; its message."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert body["code"] == code and body["message"], body
    return body["message"]


def test_malformed_json(web: httpx.Client, key: Key) -> None:
    answer = web.post(EXECUTE, headers={**bearer(key.token("hostile", "json")), "content-type": "application/json"},
                      content=b'{"statement": {"sql": ')
    assert "not a valid loot.v1.ExecuteRequest in JSON" in refusal(answer, 400, "invalid_argument")
    assert error_info(answer.json()).reason == "MALFORMED_REQUEST"


def test_json_of_the_wrong_shape(web: httpx.Client, key: Key) -> None:
    answer = web.post(EXECUTE, headers=bearer(key.token("hostile", "shape")), json={"statement": {"params": "x"}})
    refusal(answer, 400, "invalid_argument")
    assert error_info(answer.json()).reason == "MALFORMED_REQUEST"


def test_deeply_nested_json(web: httpx.Client, key: Key) -> None:
    answer = web.post(EXECUTE, headers={**bearer(key.token("hostile", "deep")), "content-type": "application/json"},
                      content=b'{"statement": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    refusal(answer, 400, "invalid_argument")


def test_a_binary_body_sent_as_json(web: httpx.Client, key: Key) -> None:
    answer = web.post(EXECUTE, headers={**bearer(key.token("hostile", "binary")), "content-type": "application/json"},
                      content=b"\x0a\x0a\x0a\x08SELECT 1")
    refusal(answer, 400, "invalid_argument")


def test_a_binary_body_with_a_content_type_not_served(web: httpx.Client, key: Key) -> None:
    for content_type in ("text/plain", "application/octet-stream", None):
        headers = bearer(key.token("hostile", "type")) | ({"content-type": content_type} if content_type else {})
        answer = web.post(EXECUTE, headers=headers, content=b"\x0a\x0a\x0a\x08SELECT 1")
        assert answer.status_code == 415
        assert "application/json" in answer.text and "application/proto" in answer.text


def test_bytes_that_are_not_a_request(web: httpx.Client, key: Key) -> None:
    answer = web.post(EXECUTE, headers={**bearer(key.token("hostile", "garbage")), "content-type": "application/proto"},
                      content=b"\xff\xff\xff\xff")
    refusal(answer, 400, "invalid_argument")
    assert error_info(answer.json()).reason == "MALFORMED_REQUEST"


def test_a_body_over_the_request_limit(web: httpx.Client, key: Key) -> None:
    answer = web.post(EXECUTE, headers={**bearer(key.token("hostile", "big")), "content-type": "application/proto"},
                      content=b"\x00" * (MAX_MESSAGE + 1))
    assert str(MAX_MESSAGE) in refusal(answer, 429, "resource_exhausted")


def test_missing_token(web: httpx.Client) -> None:
    answer = web.post(EXECUTE, json=SELECT)
    assert "Bearer" in refusal(answer, 401, "unauthenticated")
    assert error_info(answer.json()).reason == "MISSING_TOKEN"


@pytest.mark.parametrize("authorization, reason", [
    ("Bearer not.a.jwt", "MALFORMED_TOKEN"),
    ("Bearer " + "A" * 5000, "MALFORMED_TOKEN"),
    ("Basic dXNlcjpwYXNz", "BAD_AUTHORIZATION"),
    ("Bearer", "BAD_AUTHORIZATION"),
])
def test_garbled_token(web: httpx.Client, authorization: str, reason: str) -> None:
    answer = web.post(EXECUTE, headers={"authorization": authorization}, json=SELECT)
    refusal(answer, 401, "unauthenticated")
    assert error_info(answer.json()).reason == reason


def test_a_token_signed_by_another_key_for_the_same_account_is_refused(web: httpx.Client, key: Key) -> None:
    forged = Key.generate().token("hostile", "forged")
    header, payload, _ = forged.split(".")
    _, _, signature = key.token("hostile", "forged").split(".")
    answer = web.post(EXECUTE, headers=bearer(f"{header}.{payload}.{signature}"), json=SELECT)
    refusal(answer, 401, "unauthenticated")


def test_a_disallowed_origins_preflight(web: httpx.Client) -> None:
    answer = web.options(EXECUTE, headers={"origin": EVIL, "access-control-request-method": "POST",
                                           "access-control-request-headers": "authorization, content-type"})
    assert "--cors-origin" in refusal(answer, 403, "permission_denied")
    assert "access-control-allow-origin" not in answer.headers


def test_a_disallowed_origins_request_is_not_run(http_cluster: LocalCluster, web: httpx.Client, key: Key) -> None:
    answer = web.post(EXECUTE, headers={**bearer(key.token("hostile", "origin")), "origin": EVIL,
                                        "x-request-id": "evil-origin-call"}, json=SELECT)
    assert EVIL in refusal(answer, 403, "permission_denied")
    assert "access-control-allow-origin" not in answer.headers
    assert not [line for line in http_cluster.sink.lines if "evil-origin-call" in line]


@pytest.mark.parametrize("path", ["/loot.v1.Database/Nope", "/loot.v1.Account/ListDatabases", "/x", "/../../etc"])
def test_an_unknown_method_path(web: httpx.Client, key: Key, path: str) -> None:
    answer = web.post(path, headers=bearer(key.token("hostile", "path")), json=SELECT)
    assert "/loot.v1.Database/Execute" in refusal(answer, 404, "unimplemented")


def test_a_method_called_with_get(web: httpx.Client, key: Key) -> None:
    answer = web.get(EXECUTE, headers=bearer(key.token("hostile", "get")))
    assert answer.status_code == 405 and "POST" in answer.text


def test_a_file_outside_the_static_folder(web: httpx.Client) -> None:
    for path in ("/../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/nope.html"):
        answer = web.get(path)
        assert answer.status_code == 404 and "not found" in answer.text
        assert "root:" not in answer.text


def test_a_very_long_header(web: httpx.Client, key: Key) -> None:
    answer = web.post(EXECUTE, headers={**bearer(key.token("hostile", "header")), "x-padding": "a" * (MAX_METADATA + 1)},
                      json=SELECT)
    assert str(MAX_METADATA) in refusal(answer, 431, "resource_exhausted")


def test_a_token_of_the_largest_size_fits(web: httpx.Client, key: Key) -> None:
    """Tokens of up to 64 KiB are served (docs/tokens.md): the header bound is gRPC's metadata bound, not less."""
    token = key.token("hostile", "large", padding="p" * 47_000)
    assert 60_000 < len(token) <= 65_536
    answer = web.post(EXECUTE, headers=bearer(token), json=SELECT)
    assert answer.status_code == 200, answer.text

