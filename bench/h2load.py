"""Driving a gRPC or HTTP server with h2load (Debian's nghttp2-client), a C load
generator that stays far from being the bottleneck.

h2load speaks HTTP/2, and a unary gRPC call is one POST whose body is the
message behind a 5-byte prefix. h2load does not read gRPC trailers, so a call
is counted as succeeded only by its response bytes: a gRPC error carries no
message. A Connect unary call is a plain POST (HTTP/1.1 or HTTP/2) whose errors
are non-2xx statuses, so there the 2xx answers count. Throughput counts answered
calls only, and a run is refused when more calls went unanswered than the ones
cut off in flight when h2load stops.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

from bench.stats import Load, percentile
from bench.system import tool

GRPC_HEADERS = ("content-type: application/grpc", "te: trailers")
WARM_UP = 1.0  # seconds of calls before measuring starts


def grpc_frame(message: bytes) -> bytes:
    """One uncompressed gRPC message: flag byte, 4-byte big-endian length, bytes."""
    return b"\x00" + len(message).to_bytes(4, "big") + message


def drive(url: str, request: bytes, response: bytes, *, token: str | None, concurrency: int,
          duration: float) -> Load:
    """Send `request` to `url` as gRPC calls from `concurrency` streams for `duration` seconds.

    Streams are spread over at most 8 connections, like many clients behind one
    balancer; latencies are each request's own, from h2load's per-request log."""
    headers = [*GRPC_HEADERS, *([f"authorization: Bearer {token}"] if token else [])]
    out, latencies = _run(url, grpc_frame(request), headers, _streams(concurrency), duration)
    done, per_second, data = _summary(out)
    return _load(out, done, data // len(grpc_frame(response)), per_second, concurrency, latencies)


def drive_http(url: str, body: bytes, headers: list[str], *, concurrency: int, duration: float) -> Load:
    """POST `body` to `url` over HTTP/2 cleartext from `concurrency` streams for `duration` seconds (a Connect
    unary call: its errors are non-2xx, so the 2xx answers count)."""
    out, latencies = _run(url, body, headers, _streams(concurrency), duration)
    done, per_second, _ = _summary(out)
    succeeded = re.search(r"status codes: (\d+) 2xx", out)
    return _load(out, done, int(succeeded[1]) if succeeded else 0, per_second, concurrency, latencies)


def _streams(concurrency: int) -> list[str]:
    """HTTP/2: `concurrency` streams over at most 8 connections."""
    connections = min(concurrency, 8)
    return ["-c", str(connections), "-m", str(concurrency // connections)]


def _run(url: str, body: bytes, headers: list[str], shape: list[str], duration: float) -> tuple[str, list[float]]:
    """h2load's report and the sorted latencies (seconds) of its requests."""
    with tempfile.TemporaryDirectory(prefix="h2load-") as work:
        body_file, log = Path(work) / "body", Path(work) / "log"
        body_file.write_bytes(body)
        argv = [tool("h2load"), url, "-d", str(body_file), *shape,
                "-D", f"{duration:g}", f"--warm-up-time={WARM_UP:g}", "--log-file", str(log)]
        for header in headers:
            argv += ["-H", header]
        out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
        return out, sorted(int(line.split("\t")[2]) / 1e6 for line in log.read_text().splitlines() if line)


def _load(out: str, done: int, answered: int, per_second: float, concurrency: int, latencies: list[float]) -> Load:
    # h2load stops with up to `concurrency` calls in flight, cancelled, yet counted done.
    if answered == 0 or answered < 0.95 * (done - concurrency):
        raise RuntimeError(f"h2load: {answered} responses for {done} calls: calls failed\n{out}")
    answered = min(answered, done)
    return Load(concurrency, answered, per_second * answered / done,
                percentile(latencies, 0.50), percentile(latencies, 0.99))


def _summary(out: str) -> tuple[int, float, int]:
    """(calls done, calls per second, response data bytes) from h2load's report."""
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done", out)
    rate = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    data = re.search(r"\((\d+)\) data", out)
    if not (done and rate and data):
        raise RuntimeError(f"cannot read h2load's report:\n{out}")
    return int(done[1]), float(rate[1]), int(data[1])
