"""Logging set up once per process, from LOG_LEVEL and LOG_FORMAT (settings.log_level/log_format).

``text`` is for people at a terminal, ``json`` (one object per line) for log pipelines. Both
carry the same context: fields bound for the current request or fire with ``bind`` (a
contextvar, so concurrent requests never see each other's), fields bound for the whole
process with ``bind_process`` (the scheduld replica), and any ``extra=`` of the call.

Values from requests reach log lines (a path id, a header). In text mode every control
character is escaped, so CR/LF cannot forge a line and ANSI escapes cannot rewrite a
terminal; JSON mode quotes them by construction.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal

import orjson

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
NOISY = ("botocore", "boto3", "urllib3", "elastic_transport", "opensearch", "apscheduler", "werkzeug")

_NOTHING: Mapping[str, Any] = MappingProxyType({})
_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar("ecss_log", default=_NOTHING)
_process_fields: dict[str, Any] = {}
# every attribute a LogRecord has of its own; anything else on a record came from ``extra=``
# (uvicorn adds ``color_message``, its message with ANSI colours: never wanted here)
_RECORD_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}
# C0 controls but TAB, DEL and the C1 range: line breaks, ANSI (ESC) and their 8-bit forms
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def escape(text: str) -> str:
    """``text`` with control characters shown as escapes (``\\n``, ``\\x1b``): one line, inert."""
    return _CONTROL.sub(_escaped, text)


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    named = {"\n": "\\n", "\r": "\\r"}.get(char)
    return named or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


@contextlib.contextmanager
def bind(**fields: Any) -> Iterator[None]:
    """Add ``fields`` to every log line written in this context (request, fire) until exit."""
    token = bind_token(**fields)
    try:
        yield
    finally:
        _context.reset(token)


def bind_token(**fields: Any) -> contextvars.Token[Mapping[str, Any]]:
    """``bind`` for code that cannot hold a ``with`` (ASGI middleware); undo with ``unbind``."""
    return _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})


def unbind(token: contextvars.Token[Mapping[str, Any]]) -> None:
    _context.reset(token)


def bound() -> dict[str, Any]:
    """The context fields of the current context (tests, error replies)."""
    return {**_process_fields, **_context.get()}


def bind_process(**fields: Any) -> None:
    """Fields for every line of this process, whatever the thread (threads start with an empty
    contextvar context): the scheduld replica id, say."""
    _process_fields.update({k: v for k, v in fields.items() if v is not None})


def _fields_of(record: logging.LogRecord) -> dict[str, Any]:
    fields = {**_process_fields, **_context.get()}
    fields.update({k: v for k, v in record.__dict__.items() if k not in _RECORD_FIELDS})
    return {k: v for k, v in ((k, _resolved(v)) for k, v in fields.items()) if v is not None}


def _resolved(value: Any) -> Any:
    """A bound callable is asked at each line: for what is known only later (the principal,
    once authentication has run); None leaves the field out."""
    return value() if isinstance(value, Deferred) else value


class Deferred:
    """A context value computed when a line is written: ``bind(principal=Deferred(fn))``."""

    __slots__ = ("_compute",)

    def __init__(self, compute: Callable[[], Any]) -> None:
        self._compute = compute

    def __call__(self) -> Any:
        return self._compute()


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, component, logger, message, then context."""

    def __init__(self, component: str | None = None) -> None:
        super().__init__()
        self._component = component

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "component": self._component,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in _fields_of(record).items():
            entry.setdefault(key, value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        line = orjson.dumps(entry, default=str).decode()
        # valid JSON raw, but some tools (and str.splitlines) break lines on them
        if "\u2028" in line or "\u2029" in line:
            line = line.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
        return line


class TextFormatter(logging.Formatter):
    """``TEXT_FORMAT`` plus ``[key=value ...]`` context; message and values escaped.

    Tracebacks keep their line breaks: they come from our code, not from a request.
    """

    def __init__(self, component: str | None = None) -> None:
        super().__init__((f"[{component}] " if component else "") + TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        fields = _fields_of(record)
        line = super().formatMessage(record)
        # formatMessage's own result holds the raw message: escape the whole line once
        if fields:
            context = " ".join(f"{key}={value}" for key, value in fields.items())
            line = f"{line} [{context}]"
        return escape(line)


def configure_logging(level: str, *, component: str | None = None, fmt: LogFormat = "text") -> None:
    """One stderr handler on the root logger; noisy libraries held at WARNING."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter(component) if fmt == "json" else TextFormatter(component))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
