"""Request ids, the access log and request metrics: one ASGI middleware, plus error counters.

Every request gets an id: the client's ``X-Request-ID`` when it is a plausible one, else a
new one. It is echoed in the reply and bound to the log context, so every line logged while
the request is handled carries it. When it ends, one access line (method, route template,
status, duration: INFO in JSON mode, DEBUG in text mode, where people read the app's own
lines) and the request metrics, labelled by route *template* so ids never become labels.

A plain ASGI middleware rather than Starlette's ``BaseHTTPMiddleware``, which costs a task and
a stream per request (bench/api.py measures what this one costs).
"""

from __future__ import annotations

import inspect
import itertools
import logging
import os
import re
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import REGISTRY, Counter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.config import Settings
from common.errors import BusUnavailableError, PublishError, SchedulerError, StoreUnavailableError
from common.logging import (
    Deferred,
    JSONFormatter,
    bind,
    bind_token,
    held_line_handler,
    json_line,
    nothing_bound,
    unbind,
    write_line,
)
from common.metrics import LATENCY_BUCKETS, PREFIX
from webapi.requestmetrics import RequestMetrics

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("webapi.access")

REQUEST_ID_HEADER = "X-Request-ID"
_HEADER_KEY = REQUEST_ID_HEADER.lower().encode()
_VALID_ID = re.compile(r"^[A-Za-z0-9._:/+=@-]{1,128}$")
UNMATCHED = "unmatched"  # the route label of a request no route matched (404s, probes)

REQUEST_METRICS = RequestMetrics(
    requests=(PREFIX + "api_requests", "API requests, by route template, method and status"),
    latency=(PREFIX + "api_request_duration_seconds", "API request latency, by route template and method"),
    buckets=LATENCY_BUCKETS,
)
REGISTRY.register(REQUEST_METRICS)
PUBLISH_FAILURES = Counter(
    PREFIX + "api_publish_failures",
    "Change events the outbox relay could not send to the ops queue (kept and retried)",
)
STORE_ERRORS = Counter(
    PREFIX + "api_store_errors", "Requests that failed because the job store was unavailable"
)


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: bool, access_level: int) -> None:
        self.app = app
        self._metrics = metrics
        self._access_level = access_level
        self._level_name = logging.getLevelName(access_level)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        header = (_HEADER_KEY, request_id.encode())
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        # the principal is known once authentication ran, later in the request: asked per line
        alone = nothing_bound()  # then the access line's context is the one bound here
        token = bind_token(request_id=request_id, principal=Deferred(lambda: _principal_name(state)))
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            duration = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED
            method = scope["method"]
            if self._metrics:
                REQUEST_METRICS.observe(template, method, status, duration)
            if access_logger.isEnabledFor(self._access_level):
                held = held_line_handler(access_logger, self._access_level) if alone else None
                if held is None:
                    self._access_line(method, template, status, duration)
                else:  # this middleware bound all the context there is: the line is rendered later
                    principal = _principal_name(state)
                    line = (held.formatter, self._level_name, time.time(), method, template, status, duration)
                    held.hold_rendered(_render_access_line, (*line, request_id, principal))
            unbind(token)

    def _access_line(self, method: str, template: str, status: int, duration: float) -> None:
        """The request id and principal come with the request's bound context, as on every
        line of it."""
        message, fields = _access_parts(method, template, status, duration)
        write_line(access_logger, self._access_level, message, fields)


def install_observability(app: FastAPI, settings: Settings) -> None:
    """Request ids, access log and metrics; call after ``install_error_handlers``."""
    json_logs = settings.log_format == "json"
    app.add_middleware(
        ObservabilityMiddleware,
        metrics=settings.metrics.enabled,
        access_level=logging.INFO if json_logs else logging.DEBUG,
    )
    _count_domain_errors(app)
    _bind_unexpected(app)


def _access_parts(method: str, template: str, status: int, duration: float) -> tuple[str, dict[str, Any]]:
    """An access line's message and fields."""
    fields = {"method": method, "path": template, "status": status, "duration_ms": round(duration * 1000, 3)}
    return f"{method} {template} {status} {duration * 1000:.1f} ms", fields


def _render_access_line(
    formatter: JSONFormatter,
    level: str,
    created: float,
    method: str,
    template: str,
    status: int,
    duration: float,
    request_id: str,
    principal: str | None,
) -> str:
    """The JSON access line ``_access_line`` writes, when nothing but the middleware's own
    request id and principal is bound; rendered when held lines are written, many together:
    formatting in one run costs less than formatting interleaved with requests
    (bench/README.md, "One core for paired servers")."""
    message, fields = _access_parts(method, template, status, duration)
    context = (
        {"request_id": request_id}
        if principal is None
        else {"request_id": request_id, "principal": principal}
    )
    return json_line(formatter.resolved_entry(created, level, access_logger.name, message, context, fields))


def _principal_name(state: dict[str, Any]) -> str | None:
    """``request.state.principal`` (set by authentication): its ``name``, or itself."""
    principal = state.get("principal")
    if principal is None:
        return None
    return str(getattr(principal, "name", principal))


def _request_id(scope: Scope) -> str:
    for key, value in scope["headers"]:
        if key == _HEADER_KEY:
            candidate: str = value.decode("latin-1")
            if _VALID_ID.match(candidate):
                return candidate
            break
    return _new_request_id()


class _RequestIds:
    """Ids unique across processes and restarts without a random draw (a system call) per
    request: a random per-process prefix and a counter, 32 hex digits like a uuid4's (as
    chi's RequestID middleware does). The counter starts at a random value, so an id does
    not tell how many requests the process has served. A forked child draws its own."""

    def __init__(self) -> None:
        self.restart()
        os.register_at_fork(after_in_child=self.restart)

    def restart(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count(int.from_bytes(os.urandom(8)) >> 1)  # 2**63 ids to go

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


_new_request_id = _RequestIds()


def _count_domain_errors(app: FastAPI) -> None:
    """Wraps errors.py's handler: store and publish failures are counted where they surface."""
    handle = app.exception_handlers[SchedulerError]

    async def counted(request: Request, exc: Exception) -> Response:
        if isinstance(exc, StoreUnavailableError):
            STORE_ERRORS.inc()
        elif isinstance(exc, PublishError | BusUnavailableError):
            PUBLISH_FAILURES.inc()
        response = handle(request, exc)
        return await response if inspect.isawaitable(response) else response

    app.add_exception_handler(SchedulerError, counted)


def _bind_unexpected(app: FastAPI) -> None:
    """A crash's reply is sent outside the middleware (Starlette's ServerErrorMiddleware):
    give its log line and reply the request id too."""
    handle = app.exception_handlers.get(Exception)
    if handle is None:
        return

    async def with_request_id(request: Request, exc: Exception) -> Response:
        request_id = getattr(request.state, "request_id", None)
        with bind(request_id=request_id):
            reply = handle(request, exc)
            response = await reply if inspect.isawaitable(reply) else reply
        if request_id is not None:
            response.headers[REQUEST_ID_HEADER] = request_id
        return response

    app.add_exception_handler(Exception, with_request_id)
