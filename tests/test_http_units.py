"""The HTTP layer's parts that need no process: origin patterns, the static folder's bounds, the codecs,
gRPC metadata from headers."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import grpc
import pytest
from connectrpc.code import Code
from connectrpc.errors import ConnectError

from loot.http.app import http_app
from loot.http.call_context import metadata_from_headers
from loot.http.codecs import BinaryCodec, JsonCodec, Serialized
from loot.http.cors import LOCAL_ORIGINS, Origins, origin_patterns
from loot.http.errors import CODES
from loot.http.server import allowed_origins
from loot.http.static_files import STATIC, static_file
from loot.v1 import database_pb2 as pb


def test_origin_patterns_match_whole_origins_and_any_port_only_where_asked() -> None:
    origins = Origins(["https://app.example", "http://localhost:*"])
    assert origins.allow("https://app.example")
    assert not origins.allow("https://app.example:8443")
    assert not origins.allow("https://app.example.evil.test")
    assert not origins.allow("http://app.example")
    assert origins.allow("http://localhost:5173") and origins.allow("http://localhost")
    assert not origins.allow("http://localhost:5173.evil.test")
    assert not origins.allow("http://localhost.evil.test:80")
    assert not Origins([]).allow("http://localhost:5173")
    assert Origins(["*"]).allow("https://anything.example")


def test_the_setting_reads_commas_lists_and_repeats_and_refuses_what_is_not_an_origin() -> None:
    assert origin_patterns("https://a.example, http://localhost:*") == ["https://a.example", "http://localhost:*"]
    assert origin_patterns(["https://a.example", ["https://b.example"]]) == ["https://a.example", "https://b.example"]
    for bad in ("a.example", "https://a.example/path", "ftp://a.example", "https://a.example/"):
        with pytest.raises(ValueError):
            origin_patterns(bad)


@pytest.mark.parametrize("host, configured, expected", [
    ("127.0.0.1", None, LOCAL_ORIGINS),
    ("0.0.0.0", None, ()),
    ("127.0.0.1", [["https://app.example"]], ("https://app.example",)),
])
def test_loopback_pages_are_the_default_on_loopback_only(host: str, configured, expected) -> None:
    origins = allowed_origins(argparse.Namespace(host=host, cors_origin=configured))
    assert origins.patterns == tuple(expected)


def test_static_files_stay_in_their_folder(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("home")
    (tmp_path.parent / "secret.txt").write_text("no")
    assert static_file("/", tmp_path) == tmp_path / "index.html"
    assert static_file("/index.html", tmp_path) == tmp_path / "index.html"
    assert static_file("/../secret.txt", tmp_path) is None
    assert static_file("/missing.js", tmp_path) is None
    assert static_file("/", STATIC) is not None, "the package ships a page at /"


def test_json_codec_round_trips_and_binary_codec_passes_bytes_through() -> None:
    request = pb.ExecuteRequest(statement=pb.Statement(sql="SELECT ?", params=[pb.Value(integer=-7), pb.Value(null=0)]))
    json_codec = JsonCodec()
    decoded = json_codec.decode(b'{"statement": {"sql": "SELECT ?", "params": [{"integer": "-7"}, {"null": null}],'
                                b' "someFutureField": 1}}', pb.ExecuteRequest)
    assert pb.ExecuteRequest.FromString(decoded) == request
    response = pb.ExecuteResponse(result=pb.Result(rows_read=1))
    assert json_codec.encode(Serialized(response.SerializeToString(), pb.ExecuteResponse)) == b'{"result": {"rowsRead": "1"}}'
    assert BinaryCodec().decode(bytearray(b"\x01\x02"), pb.ExecuteRequest) == b"\x01\x02"
    with pytest.raises(ConnectError):
        json_codec.decode(b"[", pb.ExecuteRequest)


def test_binary_headers_become_bytes_as_in_grpc() -> None:
    metadata = metadata_from_headers([("Authorization", "Bearer t"), ("x-thing-bin", "AQI"), ("y-bin", "!!")])
    assert metadata == (("authorization", "Bearer t"), ("x-thing-bin", b"\x01\x02"))


def test_every_grpc_error_code_has_its_connect_code() -> None:
    assert {CODES[code.value[0]].name for code in grpc.StatusCode if code is not grpc.StatusCode.OK} == {
        code.name.replace("CANCELLED", "CANCELED") for code in grpc.StatusCode if code is not grpc.StatusCode.OK}



def execute_scope(headers: list[tuple[bytes, bytes]]) -> dict:
    """The ASGI scope of an HTTP POST to Execute."""
    return {"type": "http", "method": "POST", "path": "/loot.v1.Database/Execute", "root_path": "", "scheme": "http",
            "headers": headers, "query_string": b""}


@pytest.mark.parametrize("gone", [ConnectionResetError("peer reset"), ConnectError(Code.CANCELED, "Client disconnected")])
def test_a_client_gone_before_its_answer_is_written_ends_the_call_quietly(gone: Exception) -> None:
    """The answer cannot be sent (the connection broke): the call ends without an exception reaching the HTTP
    server, which would log it with a traceback."""

    async def execute(request: bytes, context) -> bytes:
        return b""

    handler = grpc.unary_unary_rpc_method_handler(execute)
    app = http_app({"Execute": handler, "Batch": handler, "Describe": handler}, Origins([]))
    scope = execute_scope([(b"content-type", b"application/proto")])

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.body":
            raise gone

    asyncio.run(app(scope, receive, send))


def test_a_servicer_taking_and_returning_messages_is_served_too() -> None:
    """Handlers with (de)serializers, as generated code registers them, work as the router's bytes-in,
    bytes-out handlers do: the HTTP layer serves any loot.v1.Database servicer."""

    async def execute(request: pb.ExecuteRequest, context) -> pb.ExecuteResponse:
        assert context.time_remaining() is not None and dict(context.invocation_metadata())["authorization"] == "Bearer t"
        return pb.ExecuteResponse(schema_changes=[request.statement.sql])

    handler = grpc.unary_unary_rpc_method_handler(execute, request_deserializer=pb.ExecuteRequest.FromString,
                                                  response_serializer=pb.ExecuteResponse.SerializeToString)
    app = http_app({"Execute": handler, "Batch": handler, "Describe": handler}, Origins([]))
    scope = execute_scope([(b"content-type", b"application/json"), (b"authorization", b"Bearer t"),
                           (b"connect-timeout-ms", b"5000")])
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b'{"statement": {"sql": "echo"}}', "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 200
    assert b"".join(m.get("body", b"") for m in sent[1:]) == b'{"schemaChanges": ["echo"]}'
