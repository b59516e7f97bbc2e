"""Structured logs: one JSON object per line on stderr (or plain text), extra fields included."""

from __future__ import annotations

import json
import logging
import sys
import time

#: The attributes every LogRecord has (not "extra" fields).
STANDARD_KEYS = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in STANDARD_KEYS and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extra = " ".join(f"{k}={v}" for k, v in vars(record).items()
                         if k not in STANDARD_KEYS and not k.startswith("_"))
        text = f"{self.formatTime(record)} {record.levelname} {record.name}: {record.getMessage()}"
        text += f" {extra}" if extra else ""
        return text + (f"\n{self.formatException(record.exc_info)}" if record.exc_info else "")


def setup_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Configure the ``errortaxa`` loggers (not the root logger) to write to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    logger = logging.getLogger("errortaxa")
    for old in list(logger.handlers):
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False
