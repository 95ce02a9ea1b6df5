"""The log formatters: one line per record, with the record's own time (the
formatted second is cached, and must change with the second)."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from collections.abc import Callable, Iterator

import pytest

from loot.observability import logs, request_id
from loot.observability.logs import JsonFormatter, TextFormatter


def _record(created: float) -> logging.LogRecord:
    record = logging.makeLogRecord({"name": "loot.access", "levelno": logging.INFO, "levelname": "INFO",
                                    "msg": "call", "method": "/x/Y", "code": "OK"})
    record.created, record.msecs = created, (created - int(created)) * 1000
    return record


def test_text_lines_carry_each_records_own_time_as_logging_formats_it() -> None:
    ours, standard = TextFormatter(), logging.Formatter()
    for created in (1_700_000_000.25, 1_700_000_000.75, 1_700_000_001.5, 1_700_003_600.0):
        record = _record(created)
        line = ours.format(record)
        assert line.startswith(f"{standard.formatTime(record)} INFO loot.access: call")
        assert line.endswith(" method=/x/Y code=OK")


def test_json_lines_carry_each_records_own_utc_time() -> None:
    formatter = JsonFormatter()
    times = [json.loads(formatter.format(_record(created)))["time"]
             for created in (1_700_000_000.25, 1_700_000_001.5, 1_700_000_001.75)]
    assert times == ["2023-11-14T22:13:20.250Z", "2023-11-14T22:13:21.500Z", "2023-11-14T22:13:21.750Z"]


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], io.StringIO]]:
    """logs.configure() onto a buffer in place of stdout; logging as it was afterwards."""
    logger = logging.getLogger("loot")
    saved = logger.handlers[:], logger.level, logger.propagate, logs._configured

    def configure(fmt: str) -> io.StringIO:
        out = io.StringIO()
        monkeypatch.setattr(sys, "stdout", out)
        logs.configure(fmt, "info")
        return out

    yield configure
    logger.handlers[:], logger.level, logger.propagate, logs._configured = saved


@pytest.mark.parametrize("fmt", logs.FORMATS)
def test_quick_lines_are_the_lines_logging_writes(configured, fmt: str) -> None:
    out = configured(fmt)
    fields = {"method": "/loot.v1.Database/Execute", "code": "OK", "duration_ms": 0.512}
    access = logging.getLogger("loot.access")
    token = request_id.current.set("req-1")
    try:
        access.info("call", extra=dict(fields))
        logs.QuickLines(access).info("call", dict(fields))
    finally:
        request_id.current.reset(token)
    standard, quick = out.getvalue().splitlines()
    if fmt == "json":
        standard_entry, quick_entry = json.loads(standard), json.loads(quick)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", quick_entry.pop("time"))
        standard_entry.pop("time")
        assert quick_entry == standard_entry
        assert quick_entry["request_id"] == "req-1"
    else:
        stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} "
        assert re.match(stamp, quick) and re.match(stamp, standard)
        assert quick.split(" ", 2)[2] == standard.split(" ", 2)[2] == (
            "INFO loot.access: call method=/loot.v1.Database/Execute code=OK duration_ms=0.512 request_id=req-1")


def test_quick_lines_go_through_logging_where_configure_did_not_set_it_up(caplog: pytest.LogCaptureFixture) -> None:
    loot = logging.getLogger("loot")
    saved = logs._configured, loot.propagate
    logs._configured, loot.propagate = None, True  # as in a program that set logging up itself
    try:
        with caplog.at_level(logging.INFO, logger="loot.access"):
            logs.QuickLines(logging.getLogger("loot.access")).info("call", {"method": "/x/Y", "code": "OK"})
    finally:
        logs._configured, loot.propagate = saved
    [record] = [r for r in caplog.records if r.name == "loot.access"]
    assert (record.getMessage(), record.method, record.code) == ("call", "/x/Y", "OK")
