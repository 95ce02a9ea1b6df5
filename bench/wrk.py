"""Driving an HTTP/1.1 server with wrk (Debian's `wrk`), a C load generator: h2load's HTTP/1.1 client
counts no answer whose status line has an empty reason phrase, which Hypercorn (the HTTP port's server)
sends, as HTTP/1.1 allows. A connection per client, one request at a time, as browsers have."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from pathlib import Path

from bench.stats import Load
from bench.system import tool

WARM_UP = 1.0  # seconds of calls, on the same connections' server, before a measured run
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}


def drive(url: str, body: bytes, headers: dict[str, str], *, concurrency: int, duration: float) -> Load:
    """POST `body` to `url` from `concurrency` connections for `duration` seconds; only 2xx answers count."""
    with tempfile.TemporaryDirectory(prefix="wrk-") as work:
        script = Path(work) / "post.lua"
        script.write_text(f'wrk.method = "POST"\nwrk.body = {json.dumps(body.decode())}\n'
                          + "".join(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}\n" for k, v in headers.items()))
        argv = [tool("wrk"), "-t", str(min(concurrency, 2)), "-c", str(concurrency), "--latency", "-s", str(script), url]
        subprocess.run([*argv[:1], "-d", f"{WARM_UP:g}s", *argv[1:]], check=True, capture_output=True)
        out = subprocess.run([*argv[:1], "-d", f"{duration:g}s", *argv[1:]], check=True, capture_output=True,
                             text=True).stdout
    total = int(re.search(r"(\d+) requests in", out)[1])
    failed = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    answered = total - (int(failed[1]) if failed else 0)
    if answered == 0 or answered < 0.95 * total:
        raise RuntimeError(f"wrk: {answered} answers for {total} calls: calls failed\n{out}")
    per_second = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]) * answered / total
    return Load(concurrency, answered, per_second, _latency(out, "50%"), _latency(out, "99%"))


def _latency(out: str, percentile: str) -> float:
    value, unit = re.search(rf"^\s+{percentile}\s+([\d.]+)(us|ms|s)$", out, re.M).groups()
    return float(value) * _UNITS[unit]
