"""common/logging.py's LineHandler: access and audit lines held briefly and written together,
in order with every other line, never lost at shutdown; and a line written that way is the
line logging itself writes (``write_line``; webapi's middleware, driven through a real ASGI
app).

The processes' own stderr is checked in tests/webapi/test_observability.py.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator, MutableMapping
from typing import Any, TypeVar

import pytest
from fastapi import FastAPI, Request

from common.logging import JSONFormatter, LineHandler, bind, held_line_handler, write_line
from webapi.observability import ObservabilityMiddleware


@pytest.fixture
def root_logging() -> Iterator[logging.Logger]:
    """The root logger, restored afterwards (the tests replace its handlers as
    ``configure_logging`` does)."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    yield root
    root.handlers[:], level = saved
    root.setLevel(level)


H = TypeVar("H", bound=logging.Handler)


def json_handler(handler: H) -> H:
    handler.setFormatter(JSONFormatter("webapi"))
    return handler


def test_held_lines_go_out_within_the_hold_and_before_any_later_record() -> None:
    stream = io.StringIO()
    handler = json_handler(LineHandler(stream, hold_seconds=0.05))
    logger = logging.getLogger("tests.held.order")
    logger.addHandler(handler)
    logger.propagate = False
    try:

        async def scenario() -> list[str]:
            handler.hold('{"n": 1}')
            handler.hold('{"n": 2}')
            assert stream.getvalue() == ""  # held
            logger.warning("a record")  # writes what is held first
            written_at_record = stream.getvalue().splitlines()
            handler.hold('{"n": 3}')
            await asyncio.sleep(0.2)  # the hold passes with nothing else logged
            return written_at_record

        at_record = asyncio.run(scenario())
    finally:
        logger.removeHandler(handler)
    assert [json.loads(line).get("n") for line in at_record] == [1, 2, None]
    assert json.loads(at_record[2])["message"] == "a record"
    assert json.loads(stream.getvalue().splitlines()[3]) == {"n": 3}


def test_held_lines_are_written_when_full_and_on_flush_without_a_loop() -> None:
    stream = io.StringIO()
    handler = LineHandler(stream, hold_seconds=60, max_held=3)

    async def fill() -> None:
        for n in range(4):
            handler.hold(str(n))

    asyncio.run(fill())
    assert stream.getvalue().splitlines() == ["0", "1", "2"]  # the third filled it
    handler.flush()  # as logging.shutdown does at exit
    assert stream.getvalue().splitlines() == ["0", "1", "2", "3"]
    handler.hold("4")  # no running loop: no one would come back for it, so at once
    assert stream.getvalue().splitlines()[-1] == "4"


def test_lines_skip_logging_only_when_the_json_line_handler_is_their_only_reader(
    root_logging: logging.Logger,
) -> None:
    access = logging.getLogger("webapi.access")
    line_handler = json_handler(LineHandler(io.StringIO()))
    root_logging.handlers[:] = [line_handler]
    assert held_line_handler(access, logging.INFO) is line_handler

    line_handler.setLevel(logging.WARNING)
    assert held_line_handler(access, logging.INFO) is None  # it would drop INFO
    line_handler.setLevel(logging.NOTSET)

    text = LineHandler(io.StringIO())
    root_logging.handlers[:] = [text]
    assert held_line_handler(access, logging.INFO) is None  # text lines: logging formats them

    capture = logging.StreamHandler(io.StringIO())
    root_logging.handlers[:] = [line_handler, capture]
    assert held_line_handler(access, logging.INFO) is None  # someone else reads them too

    root_logging.handlers[:] = [line_handler]
    access.addFilter(lambda record: True)
    try:
        assert held_line_handler(access, logging.INFO) is None
    finally:
        access.filters.clear()


async def _get(app: FastAPI, path: str, *, request_id: str) -> int:
    """One GET through the ASGI app, as a server would call it; its status."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"x-request-id", request_id.encode())],
        "client": ("127.0.0.1", 40000),
        "server": ("testserver", 80),
    }
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


def _access_lines(
    root: logging.Logger, handler: logging.StreamHandler[Any]
) -> tuple[str, list[dict[str, object]]]:
    """Two requests through the middleware, with ``handler`` as the process's only handler."""
    stream = io.StringIO()
    handler.setStream(stream)
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    app = FastAPI()

    @app.get("/things/{thing}")
    async def thing(thing: str, request: Request) -> dict[str, str]:
        if thing == "a":
            request.state.principal = "alice"  # as authentication does
        return {"thing": thing}

    app.add_middleware(ObservabilityMiddleware, metrics=False, access_level=logging.INFO)

    async def requests() -> None:
        assert await _get(app, "/things/a", request_id="req-a") == 200
        assert await _get(app, "/nothing", request_id="req-b") == 404
        with bind(tenant="t-1"):  # bound outside the middleware: the line carries it too
            assert await _get(app, "/things/c", request_id="req-c") == 200

    asyncio.run(requests())
    unflushed = stream.getvalue()
    handler.flush()
    return unflushed, [json.loads(line) for line in stream.getvalue().splitlines()]


def test_an_access_line_written_held_is_the_line_logging_writes(root_logging: logging.Logger) -> None:
    unflushed, held = _access_lines(root_logging, json_handler(LineHandler(io.StringIO(), hold_seconds=60)))
    assert unflushed == ""  # they were held: the middleware took the short way
    _, logged = _access_lines(root_logging, json_handler(logging.StreamHandler(io.StringIO())))
    assert len(held) == len(logged) == 3
    for direct, via_logging in zip(held, logged, strict=True):
        assert list(direct) == list(via_logging)  # the same fields, in the same order
        for varying in ("time", "duration_ms", "message"):  # the clock's part of each
            direct.pop(varying), via_logging.pop(varying)
        assert direct == via_logging
    assert held[0]["path"] == "/things/{thing}" and held[0]["request_id"] == "req-a"
    assert held[0]["principal"] == "alice"
    assert held[1]["path"] == "unmatched" and held[1]["status"] == 404 and "principal" not in held[1]
    assert (held[2]["tenant"], held[2]["request_id"]) == ("t-1", "req-c")


def test_write_line_writes_what_logging_would_and_at_once_without_a_hold(
    root_logging: logging.Logger,
) -> None:
    audit = logging.getLogger("ecs_scheduler.audit")
    fields = {"audit_principal": "alice", "audit_status": 201}
    written: list[dict[str, object]] = []
    for handler in (
        json_handler(LineHandler(io.StringIO(), hold_seconds=0)),  # held, but for no time
        json_handler(logging.StreamHandler(io.StringIO())),
    ):
        root_logging.handlers[:] = [handler]
        root_logging.setLevel(logging.INFO)
        with bind(request_id="req-w"):
            write_line(audit, logging.INFO, "principal=alice status=201 100%", fields)
        lines = handler.stream.getvalue().splitlines()
        assert len(lines) == 1, lines  # no hold: written before write_line returned
        written.append(json.loads(lines[0]))
    direct, via_logging = written
    assert list(direct) == list(via_logging)
    direct.pop("time"), via_logging.pop("time")
    assert direct == via_logging
    assert direct["message"] == "principal=alice status=201 100%"  # final: no %-formatting
    assert (direct["request_id"], direct["audit_principal"]) == ("req-w", "alice")


def _fails() -> str:
    raise ValueError("cannot render")


def test_a_line_rendered_when_written_keeps_its_place_and_one_that_fails_is_reported(
    capsys: pytest.CaptureFixture[str],
) -> None:
    stream = io.StringIO()
    handler = LineHandler(stream, hold_seconds=60)

    async def hold_four() -> None:
        handler.hold("first")
        handler.hold_rendered("second {}".format, (2,))
        handler.hold_rendered(_fails, ())
        handler.hold("third")

    asyncio.run(hold_four())
    assert stream.getvalue() == ""  # held, the rendered ones not yet rendered
    handler.flush()
    assert stream.getvalue() == "first\nsecond 2\nthird\n"
    assert "unrenderable line: _fails()" in capsys.readouterr().err
