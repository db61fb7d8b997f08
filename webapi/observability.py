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
import logging
import os
import re
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.config import Settings
from common.errors import BusUnavailableError, PublishError, SchedulerError, StoreUnavailableError
from common.logging import Deferred, bind, bind_token, unbind, write_line
from common.metrics import LATENCY_BUCKETS, PREFIX

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("webapi.access")

REQUEST_ID_HEADER = "X-Request-ID"
_HEADER_KEY = REQUEST_ID_HEADER.lower().encode()
_VALID_ID = re.compile(r"^[A-Za-z0-9._:/+=@-]{1,128}$")
UNMATCHED = "unmatched"  # the route label of a request no route matched (404s, probes)

REQUESTS = Counter(
    PREFIX + "api_requests",
    "API requests, by route template, method and status",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    PREFIX + "api_request_duration_seconds",
    "API request latency, by route template and method",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
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
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

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
        token = bind_token(request_id=request_id, principal=Deferred(lambda: _principal_name(state)))
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            duration = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED
            method = scope["method"]
            if self._metrics:
                self._observe(template, method, status, duration)
            if access_logger.isEnabledFor(self._access_level):
                self._access_line(method, template, status, duration)
            unbind(token)

    def _access_line(self, method: str, template: str, status: int, duration: float) -> None:
        """The principal comes with the request's bound context, as on every line of it."""
        fields: dict[str, Any] = {
            "method": method,
            "path": template,
            "status": status,
            "duration_ms": round(duration * 1000, 3),
        }
        message = f"{method} {template} {status} {duration * 1000:.1f} ms"
        write_line(access_logger, self._access_level, message, fields)

    def _observe(self, route: str, method: str, status: int, duration: float) -> None:
        key = (route, method, status)
        series = self._series.get(key)
        if series is None:  # labels() takes a lock and a dict lookup: once per series, not per call
            series = (
                REQUESTS.labels(route=route, method=method, status=str(status)),
                LATENCY.labels(route=route, method=method),
            )
            self._series[key] = series
        series[0].inc()
        series[1].observe(duration)


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
    return os.urandom(16).hex()  # as random as uuid4().hex, without building a UUID


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
