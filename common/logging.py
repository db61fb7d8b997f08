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

import asyncio
import contextlib
import contextvars
import logging
import re
import sys
import time
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


def nothing_bound() -> bool:
    """No context field for this context's lines: none bound here, none for the process."""
    return not _process_fields and not _context.get()


def bind_process(**fields: Any) -> None:
    """Fields for every line of this process, whatever the thread (threads start with an empty
    contextvar context): the scheduld replica id, say."""
    _process_fields.update({k: v for k, v in fields.items() if v is not None})


def _fields_of(record: logging.LogRecord) -> dict[str, Any]:
    """Process, context and ``extra=`` fields of a line (in that order, later ones winning)."""
    return context_fields(_extra_of(record))


def _extra_of(record: logging.LogRecord) -> dict[str, Any]:
    return {key: value for key, value in record.__dict__.items() if key not in _RECORD_FIELDS}


def context_fields(extra: Mapping[str, Any]) -> dict[str, Any]:
    """Process fields, then the context's, then ``extra`` (later ones winning).

    A bound ``Deferred`` is asked now: for what is known only later (the principal, once
    authentication has run); None leaves the field out.
    """
    present: dict[str, Any] = {}
    _add_present(present, extra)
    return present


def _add_present(into: dict[str, Any], extra: Mapping[str, Any]) -> None:
    """``context_fields(extra)`` added to ``into``, but for keys it has: one pass, for it runs
    for every line, the access line of every request included (bench/request_cpu.py)."""
    context = _context.get()
    fields: Mapping[str, Any]
    if _process_fields:
        fields = {**_process_fields, **context, **extra}
    else:
        fields = {**context, **extra} if context else extra
    for key, value in fields.items():
        if key not in into:
            if type(value) is Deferred:
                value = value()
            if value is not None:
                into[key] = value


class Deferred:
    """A context value computed when a line is written: ``bind(principal=Deferred(fn))``."""

    __slots__ = ("_compute",)

    def __init__(self, compute: Callable[[], Any]) -> None:
        self._compute = compute

    def __call__(self) -> Any:
        return self._compute()


class _SecondCache:
    """A formatted second, kept while lines keep coming within it (most do, under load)."""

    __slots__ = ("_format", "_second", "_text")

    def __init__(self, format_second: Callable[[int], str]) -> None:
        self._format = format_second
        self._second = -1
        self._text = ""

    def __call__(self, second: int) -> str:
        if second != self._second:
            self._text, self._second = self._format(second), second
        return self._text


_MILLISECONDS = tuple(f".{millisecond:03d}+00:00" for millisecond in range(1000))


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, component, logger, message, then context."""

    def __init__(self, component: str | None = None) -> None:
        super().__init__()
        self._component = component
        self._second = _SecondCache(
            lambda second: datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        )

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        entry = self.entry(record.created, record.levelname, record.name, message, _extra_of(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json_line(entry)

    def entry(
        self, created: float, level: str, logger: str, message: str, extra: Mapping[str, Any]
    ) -> dict[str, Any]:
        """A line's object: the fields every line starts with, then the context fields with
        ``extra`` (``context_fields``) that do not shadow them; ``created`` is a ``time.time()``."""
        entry: dict[str, Any] = {
            "time": self._time(created),
            "level": level,
            "component": self._component,
            "logger": logger,
            "message": message,
        }
        _add_present(entry, extra)
        return entry

    def resolved_entry(
        self,
        created: float,
        level: str,
        logger: str,
        message: str,
        context: Mapping[str, Any],
        extra: Mapping[str, Any],
    ) -> dict[str, Any]:
        """``entry``, for a caller that holds every context field there is, resolved: one dict
        display, no lookup or merge of bound fields. No value is None, no key repeats."""
        return {
            "time": self._time(created),
            "level": level,
            "component": self._component,
            "logger": logger,
            "message": message,
            **context,
            **extra,
        }

    def _time(self, created: float) -> str:
        """As isoformat(timespec="milliseconds") of the UTC time, the second's text cached."""
        second = int(created)
        return self._second(second) + _MILLISECONDS[min(999, int((created - second) * 1000))]


def json_line(entry: Mapping[str, Any]) -> str:
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
        self._second = _SecondCache(
            lambda second: time.strftime(self.default_time_format, self.converter(second))
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        """logging's own text (local time, ``,mmm``), the second's part formatted once."""
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        return f"{self._second(int(record.created))},{int(record.msecs):03d}"

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        fields = _fields_of(record)
        line = super().formatMessage(record)
        # formatMessage's own result holds the raw message: escape the whole line once
        if fields:
            context = " ".join(f"{key}={value}" for key, value in fields.items())
            line = f"{line} [{context}]"
        return escape(line)


class LineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The process's stderr handler: records as any StreamHandler, plus lines already formatted
    (``hold``), kept up to ``hold_seconds`` and written together in one call.

    For the lines of every request (``write_line``: the access line, a write's audit line),
    where building a LogRecord, handling, formatting and one write per line were over a
    quarter of a GET's CPU (bench/request_cpu.py). Held lines go out before any record's line,
    so the order of lines is kept; at most ``hold_seconds`` of them are lost if the process is
    killed (as with nginx's ``access_log … buffer= flush=``).
    """

    def __init__(self, stream: Any, *, hold_seconds: float = 0.1, max_held: int = 1000) -> None:
        super().__init__(stream)
        self.hold_seconds = hold_seconds
        self.max_held = max_held
        self._held: list[str | tuple[Callable[..., str], tuple[Any, ...]]] = []

    def hold(self, line: str) -> None:
        """Write ``line`` (no newline) within ``hold_seconds``; from an event loop's thread."""
        self._hold(line)

    def hold_rendered(self, render: Callable[..., str], args: tuple[Any, ...]) -> None:
        """``hold(render(*args))``, with ``render`` called when the held lines are written."""
        self._hold((render, args))

    def _hold(self, line: str | tuple[Callable[..., str], tuple[Any, ...]]) -> None:
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            self._held.append(line)
            count = len(self._held)
        if count >= self.max_held or self.hold_seconds <= 0:
            self.write_held()
        elif count == 1:
            try:
                asyncio.get_running_loop().call_later(self.hold_seconds, self.write_held)
            except RuntimeError:  # no loop to come back: now
                self.write_held()

    def write_held(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            if not self._held:
                return
            lines, self._held = self._held, []
            try:
                self.stream.write("\n".join(filter(None, map(self._rendered, lines))) + "\n")
                self.stream.flush()
            except Exception:  # as emit: a failed write is reported, never raised into the app
                self.handleError(logging.makeLogRecord({"msg": self._rendered(lines[0])}))

    def _rendered(self, line: str | tuple[Callable[..., str], tuple[Any, ...]]) -> str:
        if isinstance(line, str):
            return line
        render, args = line
        try:
            return render(*args)
        except Exception:  # a line that cannot be rendered is reported; the others are written
            self.handleError(logging.makeLogRecord({"msg": f"unrenderable line: {render.__name__}{args!r}"}))
            return ""

    def emit(self, record: logging.LogRecord) -> None:
        if self._held:
            self.write_held()
        super().emit(record)

    def flush(self) -> None:
        self.write_held()
        super().flush()


def held_line_handler(logger: logging.Logger, level: int) -> LineHandler | None:
    """The JSON ``LineHandler`` that is the only place ``logger``'s lines at ``level`` go, if it
    is: then a line may skip the logging machinery. None when anything else would see them (a test's
    capture, a filter, another handler): they go through ``logger`` as usual."""
    found: LineHandler | None = None
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            return None
        for handler in current.handlers:
            if found is not None or type(handler) is not LineHandler or handler.filters:
                return None
            found = handler
        if not current.propagate:
            break
        current = current.parent
    if found is None or found.level > level or not isinstance(found.formatter, JSONFormatter):
        return None
    return found


def write_line(logger: logging.Logger, level: int, message: str, fields: Mapping[str, Any]) -> None:
    """The line ``logger.log(level, message, extra=fields)`` writes, for the lines of every
    request (access, audit): held and formatted without a LogRecord when the JSON
    ``LineHandler`` is their only reader, else through ``logger`` as usual. ``message`` is
    final (no %-arguments); the caller has checked ``logger.isEnabledFor(level)``."""
    held = held_line_handler(logger, level)
    if held is not None:
        formatter: JSONFormatter = held.formatter  # type: ignore[assignment]  # checked by the lookup
        name = logging.getLevelName(level)
        held.hold(json_line(formatter.entry(time.time(), name, logger.name, message, fields)))
        return
    # as ``Logger.log`` would, without its search of the stack for the caller
    logger.handle(logger.makeRecord(logger.name, level, __file__, 0, message, (), None, extra=dict(fields)))


def configure_logging(
    level: str, *, component: str | None = None, fmt: LogFormat = "text", hold_seconds: float = 0.1
) -> None:
    """One stderr handler on the root logger; noisy libraries held at WARNING.

    Records skip the thread and process names, which neither format shows (logging's own
    switches for it): part of the cost of every line, access lines included.
    """
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = LineHandler(sys.stderr, hold_seconds=hold_seconds)
    handler.setFormatter(JSONFormatter(component) if fmt == "json" else TextFormatter(component))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
