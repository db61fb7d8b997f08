"""HTTP-level protections: security headers on every reply, CORS and allowed hosts as set.

``SecurityHeaders`` is plain ASGI (no per-request Request object): ``nosniff`` on every reply,
``Cache-Control: no-store`` on every reply that sets no cache policy of its own (API replies
carry job data; the documentation assets are cacheable static files).
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.config import WebAPISettings
from webapi.deadline import Deadline

_NOSNIFF = (b"x-content-type-options", b"nosniff")
_NO_STORE = (b"cache-control", b"no-store")


class SecurityHeaders:
    """Adds the headers to the start message only: one closure per request, no Request object,
    no copy of the message (measured with bench/request_cpu.py)."""

    def __init__(self, app: ASGIApp, *, cacheable_prefixes: tuple[str, ...] = ()) -> None:
        self.app = app
        self.cacheable_prefixes = cacheable_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cacheable = bool(self.cacheable_prefixes) and scope["path"].startswith(self.cacheable_prefixes)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers") or []
                if cacheable or _has_cache_control(headers):
                    message["headers"] = [*headers, _NOSNIFF]
                else:
                    message["headers"] = [*headers, _NOSNIFF, _NO_STORE]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _has_cache_control(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    for name, _ in headers:
        if name.lower() == b"cache-control":
            return True
    return False


def install_middleware(
    app: FastAPI, settings: WebAPISettings, *, cacheable_prefixes: tuple[str, ...]
) -> None:
    """Outermost last: allowed hosts, then CORS (so preflights get answers), then headers,
    then the request deadline (so its 503 gets the headers too)."""
    app.add_middleware(Deadline, seconds=settings.limits.request_deadline_seconds)
    app.add_middleware(SecurityHeaders, cacheable_prefixes=cacheable_prefixes)
    if settings.cors.allow_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors.allow_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    if settings.allowed_hosts:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts)
