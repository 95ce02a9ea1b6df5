"""The log formatters: one line per record, with the record's own time (the
formatted second is cached, and must change with the second)."""

from __future__ import annotations

import json
import logging

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
