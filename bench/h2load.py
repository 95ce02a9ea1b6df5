"""Driving a gRPC server with h2load (Debian's nghttp2-client), a C load generator
that stays far from being the bottleneck.

h2load speaks HTTP/2, and a unary gRPC call is one POST whose body is the
message behind a 5-byte prefix. h2load does not read gRPC trailers, so a call
is counted as succeeded only by its response bytes: a gRPC error carries no
message. Throughput counts answered calls only, and a run is refused when more
calls went unanswered than the ones cut off in flight when h2load stops.
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
    """Send `request` to `url` from `concurrency` streams for `duration` seconds.

    Streams are spread over at most 8 connections, like many clients behind one
    balancer; latencies are each request's own, from h2load's per-request log."""
    connections = min(concurrency, 8)
    with tempfile.TemporaryDirectory(prefix="h2load-") as work:
        body, log = Path(work) / "body", Path(work) / "log"
        body.write_bytes(grpc_frame(request))
        headers = [*GRPC_HEADERS, *([f"authorization: Bearer {token}"] if token else [])]
        argv = [tool("h2load"), url, "-d", str(body), "-c", str(connections), "-m", str(concurrency // connections),
                "-D", f"{duration:g}", f"--warm-up-time={WARM_UP:g}", "--log-file", str(log)]
        for header in headers:
            argv += ["-H", header]
        out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
        latencies = sorted(int(line.split("\t")[2]) / 1e6 for line in log.read_text().splitlines() if line)
    done, per_second, data = _summary(out)
    answered = data // len(grpc_frame(response))
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
