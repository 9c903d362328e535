"""Structured logs for the node: ``key=value`` text or JSON lines, never a secret or amount.

Modules log with the stdlib (``logging.getLogger("veil.<area>")``) and pass
fields as ``extra={...}``; ``configure_logging`` installs one handler on the
``veil`` logger whose formatter writes the message and those fields. Every
record gets the id of the API request being handled, if any (``REQUEST_ID``).

Why a field-name deny list on top of care at the call sites: a log line is
copied to places with weaker access control than the node's key, so a field
named like a secret (an amount, a blinding, an opening, a seed, a private
key, a memo note) is replaced by ``[redacted]`` whatever its value, and a
forgotten call site cannot leak one.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Final, TextIO

from aiohttp.http_exceptions import HttpProcessingError

REQUEST_ID: ContextVar[str | None] = ContextVar("veil_request_id", default=None)
"""The id of the API request being handled (set by the API's error middleware)."""

REDACTED: Final = "[redacted]"
SECRET_FIELD_NAMES: Final = frozenset(
    {
        "amount",
        "amounts",
        "value",
        "values",
        "blinding",
        "blindings",
        "opening",
        "openings",
        "note",
        "secret",
        "seed",
        "private_key",
        "memo_private_key",
        "signing_key",
        "password",
    }
)
# Attributes every LogRecord has: whatever else a record carries came from ``extra``.
_STANDARD_ATTRIBUTES: Final = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__
) | {"message", "asctime", "taskName"}


def record_fields(record: logging.LogRecord) -> dict[str, object]:
    """The ``extra`` fields of ``record`` (and its request id), secrets redacted."""
    fields: dict[str, object] = {}
    for name, value in record.__dict__.items():
        if name in _STANDARD_ATTRIBUTES:
            continue
        fields[name] = REDACTED if name.lower() in SECRET_FIELD_NAMES else _plain(value)
    request_id = REQUEST_ID.get()
    if request_id is not None and "request_id" not in fields:
        fields["request_id"] = request_id
    return fields


def _plain(value: object) -> object:
    if isinstance(value, bytes):
        return value.hex()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, then the fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(record_fields(record))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, sort_keys=False, default=str)


class KeyValueFormatter(logging.Formatter):
    """``ts LEVEL logger: message key=value ...`` for people reading a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{k}={v}" for k, v in record_fields(record).items())
        text = f"{_timestamp(record)} {record.levelname} {record.name}: {record.getMessage()}"
        if fields:
            text = f"{text} {fields}"
        if record.exc_info:
            text = f"{text}\n{self.formatException(record.exc_info)}"
        return text


def configure_logging(
    *, json_lines: bool = False, level: int | str = logging.INFO, stream: TextIO | None = None
) -> logging.Handler:
    """Send the ``veil`` loggers to ``stream`` (stderr by default); returns the handler.

    Replaces a handler an earlier call installed, so calling it twice does not
    double every line.
    """
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonLinesFormatter() if json_lines else KeyValueFormatter())
    handler.set_name("veil")
    root = logging.getLogger("veil")
    for old in [h for h in root.handlers if h.get_name() == "veil"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    return handler


class HttpServerLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The logger handed to aiohttp's servers (API and peer port).

    Why: aiohttp logs a client's malformed HTTP (a bad request line, a header
    over 8 KiB), which it answers 400 itself, with ``logger.exception`` on
    ``aiohttp.server``: a multi-line traceback at ERROR, outside the ``veil``
    handler, so it reached stderr unformatted and broke JSON-lines logs. Now
    that is one INFO line here, the error's first words only (the rest quotes
    the client's bytes); any other error stays an error with its traceback.
    """

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        error = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        if isinstance(error, HttpProcessingError):
            what = http_error_summary(error)
            self.info("malformed HTTP from a client, answered %d: %s", error.code, what)
            return
        super().exception(msg, *args, exc_info=exc_info, **kwargs)


def http_error_summary(error: BaseException | None) -> str:
    """The first words of aiohttp's reason for refusing a request: the rest quotes
    the client's bytes, which stay out of logs and answers."""
    if not isinstance(error, HttpProcessingError):
        return "unreadable request"
    return str(error.message).split("\n", 1)[0].split(":", 1)[0].strip() or "unreadable request"


def http_server_log(name: str) -> HttpServerLog:
    """``HttpServerLog`` over the ``veil`` logger ``name``."""
    return HttpServerLog(logging.getLogger(name), {})
