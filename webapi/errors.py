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
from starlette.exceptions import HTTPException as StarletteHTTPException

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


class JSONReply(Response):
    """JSON rendered with orjson (fast, and strict about what it encodes)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


_STATUS: dict[type[SchedulerError], int] = {
    InvalidJobError: 400,
    NotAuthenticatedError: 401,
    PermissionDeniedError: 403,
    JobNotFoundError: 404,
    JobExistsError: 409,
    ConcurrentUpdateError: 409,  # the store retried; the client may retry too
    BodyTooLargeError: 413,
    NotJSONError: 415,
    StoreUnavailableError: 503,
    BusUnavailableError: 503,
    PublishError: 503,
    LaunchError: 503,  # scheduld's; listed so that no domain error can become a 500
    LeaseLostError: 503,
}
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def status_of(error: SchedulerError) -> int:
    for cls in type(error).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return 500


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SchedulerError)
    status = status_of(exc)
    body: dict[str, Any] = {"message": exc.message}
    if isinstance(exc, InvalidJobError):
        body["errors"] = exc.errors
    if isinstance(exc, PublishError):
        body.update(exc.reply)
    denied = status in (401, 403)
    if denied or request.method not in _SAFE_METHODS:
        if isinstance(exc, PublishError):  # the write stands; only scheduld's notice failed
            audit.record(request, outcome="saved-not-notified", status=status, job_id=exc.job_id)
        else:
            audit.record(request, outcome="denied" if denied else "failed", status=status)
    if status >= 500:
        logger.error("%s %s failed: %s", request.method, request.url.path, exc.message)
    elif not denied and request.method in _SAFE_METHODS:
        logger.info("%s %s rejected (%d): %s", request.method, request.url.path, status, exc.message)
    return JSONReply(body, status_code=status, headers=_CHALLENGE if status == 401 else None)


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
    return JSONReply({"message": message}, status_code=exc.status_code, headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> Response:
    logger.error("%s %s crashed", request.method, request.url.path, exc_info=exc)
    return JSONReply({"message": "Internal error; it has been logged"}, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(SchedulerError, _domain_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
