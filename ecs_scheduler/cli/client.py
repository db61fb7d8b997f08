"""The CLI's only way to the scheduler: the REST API over HTTP (httpx).

Every failure becomes an ``ApiError`` carrying the API's own message (and per-field errors),
so commands report what the server said and exit non-zero.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx

logger = logging.getLogger(__name__)

PAGE = 1000


class ApiError(Exception):
    """The API refused a request (``status`` ≥ 400) or could not be reached (``status`` 0)."""

    def __init__(self, status: int, message: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors or {}


class Api:
    """A thin client of the ECS Scheduler REST API; the token, when given, is sent as a bearer."""

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 30.0) -> None:
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def request(
        self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        try:
            reply = self._http.request(method, path, json=json, params=params)
        except httpx.HTTPError as exc:
            raise ApiError(0, f"cannot reach {self.url}: {exc}") from exc
        if reply.status_code >= 400:
            raise _error_of(reply)
        if not reply.content:
            return None
        try:
            return reply.json()
        except ValueError as exc:
            raise ApiError(reply.status_code, f"{method} {path}: the reply is not JSON") from exc

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params or None)

    def settable_fields(self) -> frozenset[str] | None:
        """The job fields a user may set, from the API's own document (the body of
        PUT /jobs/{id} in /spec), so fields the server adds later are compared and exported
        without a new ecss; None if the document does not say."""
        try:
            spec = self.get("/spec")
        except ApiError:
            return None
        schemas = (spec.get("components") or {}).get("schemas") or {}
        for path, operations in (spec.get("paths") or {}).items():
            if path.startswith("/jobs/{") and path.count("/") == 2 and "put" in operations:
                content = (operations["put"].get("requestBody") or {}).get("content") or {}
                schema = (content.get("application/json") or {}).get("schema") or {}
                if "$ref" in schema:
                    schema = schemas.get(schema["$ref"].rsplit("/", 1)[-1]) or {}
                properties = schema.get("properties")
                if isinstance(properties, dict) and properties:
                    return frozenset(properties) | {"id"}
        return None

    def iter_jobs(self) -> Iterator[dict[str, Any]]:
        """Every job, following the API's pages."""
        skip = 0
        while True:
            page = self.get("/jobs", skip=skip, count=PAGE)
            yield from page["jobs"]
            if not page.get("next"):
                return
            skip += PAGE


def _error_of(reply: httpx.Response) -> ApiError:
    message = f"HTTP {reply.status_code} {reply.reason_phrase}"
    errors: dict[str, str] = {}
    try:
        body = reply.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        message = str(body.get("message") or body.get("detail") or message)
        if isinstance(body.get("errors"), dict):
            errors = {str(key): str(value) for key, value in body["errors"].items()}
    return ApiError(reply.status_code, message, errors)
