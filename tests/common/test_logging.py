"""common/logging.py: JSON lines with context, and text lines that request values cannot forge.

The formatters are driven through a real ``logging`` handler writing to a buffer; the
processes' own output is checked in tests/webapi/test_observability.py and
tests/scheduld/test_http.py.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from common.logging import Deferred, JSONFormatter, TextFormatter, bind, bind_process, bound, escape

HOSTILE = "job\r\n2026-01-01 00:00:00,000 CRITICAL webapi: forged\x1b[2J\x1b]0;title\x07\u2028end"


@pytest.fixture
def capture() -> Iterator[tuple[logging.Logger, logging.StreamHandler[io.StringIO]]]:
    logger = logging.getLogger(f"tests.logging.{threading.get_ident()}")
    handler = logging.StreamHandler(io.StringIO())
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, handler
    logger.removeHandler(handler)


def lines(handler: logging.StreamHandler[io.StringIO]) -> list[str]:
    return handler.stream.getvalue().splitlines()


def test_json_lines_carry_the_fixed_fields_and_the_bound_context(
    capture: tuple[logging.Logger, logging.StreamHandler[io.StringIO]],
) -> None:
    logger, handler = capture
    handler.setFormatter(JSONFormatter("webapi"))
    with bind(request_id="req-1", principal="alice"):
        logger.info("job %s created", "nightly", extra={"job_id": "nightly"})
        with bind(run_id="nightly@2026"):
            logger.warning("inner")
    logger.info("outside")
    first, inner, outside = (json.loads(line) for line in lines(handler))
    assert set(first) >= {"time", "level", "component", "logger", "message"}
    assert first["level"] == "INFO" and first["component"] == "webapi"
    assert first["message"] == "job nightly created"
    assert first["time"].endswith("+00:00")
    assert (first["request_id"], first["principal"], first["job_id"]) == ("req-1", "alice", "nightly")
    assert inner["run_id"] == "nightly@2026" and inner["request_id"] == "req-1"
    assert "request_id" not in outside and "run_id" not in outside


def test_json_lines_quote_hostile_values_and_keep_tracebacks(
    capture: tuple[logging.Logger, logging.StreamHandler[io.StringIO]],
) -> None:
    logger, handler = capture
    handler.setFormatter(JSONFormatter("scheduld"))
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("job %s failed", HOSTILE)
    (line,) = lines(handler)  # one line: the CR/LF of the value and of the traceback are escaped
    entry = json.loads(line)
    assert entry["message"] == f"job {HOSTILE} failed"
    assert "ValueError: boom" in entry["exception"]


def test_text_lines_escape_control_characters_so_a_value_cannot_forge_a_line(
    capture: tuple[logging.Logger, logging.StreamHandler[io.StringIO]],
) -> None:
    """Regression (log injection): CR/LF and ANSI escapes in a path id reached text logs raw."""
    logger, handler = capture
    handler.setFormatter(TextFormatter("webapi"))
    with bind(request_id="abc\ndef"):
        logger.info("GET /jobs/%s rejected (404)", HOSTILE)
    output = handler.stream.getvalue()
    (line,) = output.splitlines()
    assert "\x1b" not in output and "\r" not in output and "\u2028" not in output
    assert "job\\r\\n2026-01-01" in line and "\\x1b[2J" in line and "\\x07" in line
    assert line.endswith("[request_id=abc\\ndef]")


def test_bound_fields_do_not_leak_between_threads() -> None:
    seen: dict[str, object] = {}
    bind_process(replica="host:1:abc")
    with bind(request_id="main"):

        def other() -> None:
            seen.update(bound())

        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        assert bound()["request_id"] == "main"
    assert seen.get("replica") == "host:1:abc" and "request_id" not in seen


def test_escape_leaves_ordinary_text_alone() -> None:
    assert escape("plain\ttext é ü 日本") == "plain\ttext é ü 日本"
    assert escape("a\x00b\x9bc") == "a\\x00b\\x9bc"


def test_deferred_fields_are_asked_per_line_and_left_out_while_none(
    capture: tuple[logging.Logger, logging.StreamHandler[io.StringIO]],
) -> None:
    logger, handler = capture
    handler.setFormatter(JSONFormatter("webapi"))
    state: dict[str, str] = {}
    with bind(request_id="r", principal=Deferred(lambda: state.get("principal"))):
        logger.info("before authentication")
        state["principal"] = "alice"
        logger.info("after")
    before, after = (json.loads(line) for line in lines(handler))
    assert "principal" not in before and after["principal"] == "alice"


@pytest.mark.parametrize("created", [1764633600.0, 1764633600.123456, 1764633659.9994, 1764637200.5])
def test_line_times_are_those_of_the_record_with_the_second_cached(created: float) -> None:
    """The formatters format each second once; a line's time is still its own record's."""
    json_formatter, text_formatter = JSONFormatter("webapi"), TextFormatter("webapi")
    plain = logging.Formatter()
    for moment in (created - 1, created, created + 0.0004, created + 1):  # another second, then back
        record = logging.makeLogRecord({"msg": "m", "created": moment, "msecs": (moment % 1) * 1000 // 1})
        stamp = json.loads(json_formatter.format(record))["time"]
        assert stamp == datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")
        assert text_formatter.formatTime(record) == plain.formatTime(record)
