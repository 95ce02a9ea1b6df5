"""Process logging: plain text for people, or one JSON object per line for collectors.

Every record made while serving a call carries that call's request id.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable

from loot.observability import request_id

FORMATS = ("text", "json")
LEVELS = ("debug", "info", "warning", "error")
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.current.get()
        return True


class _Seconds:
    """The formatted second of a timestamp, kept while it stays the same: a line per call formats
    the same second hundreds of times."""

    def __init__(self, fmt: str, convert: Callable[[float], time.struct_time]):
        self._fmt, self._convert = fmt, convert
        self._second, self._text = -1, ""

    def __call__(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            self._second, self._text = second, time.strftime(self._fmt, self._convert(second))
        return self._text


class JsonFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self._seconds = _Seconds("%Y-%m-%dT%H:%M:%S", time.gmtime)

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": f"{self._seconds(record.created)}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({key: value for key, value in vars(record).items() if key not in _STANDARD and value is not None})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._seconds = _Seconds(self.default_time_format, self.converter)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 (logging's name)
        return self.default_msec_format % (self._seconds(record.created), record.msecs)

    def format(self, record: logging.LogRecord) -> str:
        extra = {key: value for key, value in vars(record).items() if key not in _STANDARD and value is not None}
        line = super().format(record)
        return line + "".join(f" {key}={value}" for key, value in extra.items())


def configure(fmt: str = "text", level: str = "info") -> None:
    """Send the `loot` loggers to stdout, where supervisors and container runtimes collect it."""
    if fmt not in FORMATS:
        raise SystemExit(f"loot: --log-format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if level.lower() not in LEVELS:
        raise SystemExit(f"loot: --log-level must be one of {', '.join(LEVELS)}, not {level!r}")
    # Fields no formatter here prints, which every record would otherwise look up (the caller's frame,
    # thread and process names): the logging HOWTO's "Optimization" settings.
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(_RequestIdFilter())
    logger = logging.getLogger("loot")
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False
