"""The one place that knows HTTP status codes: domain errors → JSON error replies.

Every error reply is ``{"message": ...}``; 400s add ``"errors"`` naming each bad field.
Invalid input is answered 400 with ``errors`` naming each bad field, never FastAPI's default 422.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from common.errors import (
    BusUnavailableError,
    ConcurrentUpdateError,
    InvalidJobError,
    JobExistsError,
    JobNotFoundError,
    LaunchError,
    LeaseLostError,
    NotAuthenticatedError,
    PermissionDeniedError,
    PublishError,
    QuotaExceededError,
    RateLimitedError,
    RunNotFoundError,
    SchedulerError,
    StoreUnavailableError,
)
from webapi import audit

logger = logging.getLogger(__name__)


class NotJSONError(SchedulerError):
    def __init__(self, content_type: str) -> None:
        shown = content_type or "none"
        super().__init__(f"Content-Type must be application/json (got {shown})")


class BodyTooLargeError(SchedulerError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"Request body too large: at most {limit} bytes")


class DeadlineExceededError(SchedulerError):
    """The request's total deadline passed (webapi/deadline.py); says what it waited on."""

    def __init__(self, seconds: float, waiting_on: str | None, *, write: bool) -> None:
        what = f"waiting for {waiting_on}" if waiting_on else "while processing it"
        message = f"Request not answered within {seconds:g} s (request deadline), {what}"
        if write:
            message += (
                "; the change may still be saved: read the job to find out, or retry "
                "(PUT is idempotent, a retried POST gets 409 and a retried DELETE 404 once it was)"
            )
        super().__init__(message)


class JSONReply(Response):
    """JSON rendered with orjson (fast, and strict about what it encodes)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


_STATUS: dict[type[SchedulerError], int] = {
    InvalidJobError: 400,
    NotAuthenticatedError: 401,
    PermissionDeniedError: 403,
    QuotaExceededError: 403,  # retrying does not help: delete jobs or ask for a higher quota
    JobNotFoundError: 404,
    RunNotFoundError: 404,
    JobExistsError: 409,
    ConcurrentUpdateError: 409,  # the store retried; the client may retry too
    BodyTooLargeError: 413,
    NotJSONError: 415,
    RateLimitedError: 429,
    StoreUnavailableError: 503,
    BusUnavailableError: 503,
    PublishError: 503,
    LaunchError: 503,  # scheduld's; listed so that no domain error can become a 500
    LeaseLostError: 503,
    DeadlineExceededError: 503,
}
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def status_of(error: SchedulerError) -> int:
    for cls in type(error).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return 500


def error_reply(error: SchedulerError) -> JSONReply:
    """The reply for ``error`` outside a route (plain ASGI middleware)."""
    return JSONReply({"message": error.message}, status_code=status_of(error))


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SchedulerError)
    status = status_of(exc)
    body: dict[str, Any] = {"message": exc.message}
    if isinstance(exc, InvalidJobError):
        body["errors"] = exc.errors
    denied = status in (401, 403)
    if denied or request.method not in _SAFE_METHODS:
        audit.record(request, outcome="denied" if denied else "failed", status=status)
    if status >= 500:
        logger.error("%s %s failed: %s", request.method, request.url.path, exc.message)
    elif not denied and request.method in _SAFE_METHODS:
        logger.info("%s %s rejected (%d): %s", request.method, request.url.path, status, exc.message)
    headers = _CHALLENGE if status == 401 else None
    if isinstance(exc, RateLimitedError):
        headers = {"Retry-After": str(exc.retry_after)}
    return JSONReply(body, status_code=status, headers=headers)


async def _request_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors: dict[str, str] = {}
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ()) if part not in {"query", "path", "body"}]
        errors.setdefault(".".join(loc) or "request", str(error.get("msg", "invalid")))
    detail = "; ".join(f"{field}: {reason}" for field, reason in errors.items())
    return JSONReply({"message": f"Invalid request: {detail}", "errors": errors}, status_code=400)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else "Request failed"
    headers = exc.headers
    if exc.status_code == 405:
        # Starlette names only the methods of the first route matching the path; FastAPI
        # makes one route per method, so list every route's (RFC 9110: Allow lists them all).
        allowed = allowed_methods(request)
        headers = {**(headers or {}), "Allow": ", ".join(allowed)}
        message = f"Method {request.method} not allowed on this path; allowed: {', '.join(allowed)}"
    return JSONReply({"message": message}, status_code=exc.status_code, headers=headers)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path (only computed for a 405)."""
    path = request.url.path
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):  # included routers' routes as served
        if route.methods and route.path and compile_path(route.path)[0].match(path):
            methods.update(route.methods)
    return sorted(methods, key=lambda method: _METHOD_ORDER.index(method) if method in _METHOD_ORDER else 99)


async def _unexpected(request: Request, exc: Exception) -> Response:
    logger.error("%s %s crashed", request.method, request.url.path, exc_info=exc)
    return JSONReply({"message": "Internal error; it has been logged"}, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(SchedulerError, _domain_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
