"""Logging setup: readable text on a terminal, one JSON object per line for log shippers.

Extra fields passed with ``log.info(..., extra={...})`` (url, rows, bytes...) become JSON keys.
Values that look like AWS secrets are masked, whatever logged them. In text, ``file://`` URLs
show as the paths they name (``/out/year=2024/x.parquet``, quoted when the shell needs it), which
paste into a shell or DuckDB; JSON keeps the URLs.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import sys
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
_SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID")


def _secrets() -> list[str]:
    return [v for k in _SECRET_ENV if (v := os.environ.get(k)) and len(v) >= 8]


def redact(text: str) -> str:
    """Mask credentials from the environment and signed-request fragments."""
    for secret in _secrets():
        text = text.replace(secret, "****")
    return re.sub(r"(Signature=|X-Amz-Security-Token=|Credential=)[^\s&,\"']+", r"\1****", text)


def reason_summary(reason: str) -> str:
    """The part of a rejection reason before its first ": ".

    What follows often quotes the payload (``couldn't parse:<value>``, ``cannot read '<value>'``),
    and payloads stay out of logs above DEBUG; the full reason goes to DEBUG and the error sink.
    """
    head, sep, _ = reason.partition(": ")
    if not sep:
        head, sep, _ = reason.partition(":")
    return head


_FILE_URL = re.compile(r"file://(/[^\s'\"]*)")


def file_urls_as_paths(text: str) -> str:
    """``file:///out/year%3D2024/a.parquet`` -> ``/out/year=2024/a.parquet`` (quoted if needed)."""
    return _FILE_URL.sub(lambda m: shlex.quote(unquote(m.group(1))), text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(data, default=str))


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        return redact(file_urls_as_paths(super().format(record)))


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Configure the root logger once for the CLI (libraries embedding us configure their own)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "smart_open"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
