"""Log set-up for the server: text or one JSON object per line (config `logFormat`).

Both formats carry the same records. A JSON line always has ``time``, ``level``, ``logger`` and
``message``; a record about one HTTP request (the access line, docs/configuration.md "Logs")
adds ``request_id``, ``method``, ``path``, ``status`` and ``duration_ms``, and a record with a
traceback adds ``error``. Nothing secret is ever passed to a log call (credentials, tokens,
keys, the DSN password): the formatters print what they are given.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

# The request fields an access record carries as `extra=` attributes, in output order.
REQUEST_FIELDS = ("request_id", "method", "path", "status", "duration_ms")


class JsonFormatter(logging.Formatter):
    """One JSON object per line; the message and any traceback never break the line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in REQUEST_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def configure_logging(level: str, fmt: str) -> None:
    """Root logging to stderr at ``level`` (`debug`, `info`, `warning`/`warn`, `error`) in
    ``fmt`` (`text` or `json`)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The API listener writes its own access lines (resonate.http); aiohttp's are off.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
