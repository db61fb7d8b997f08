"""The web console at ``/ui``: one static page and its assets, all shipped in this package.

The page carries no job data: the browser app (ui/static/app.js) reads and writes through the
REST API with the user's token, so the console can do exactly what that token may do and no
more; the shell itself is public. A Content-Security-Policy keeps every request the page makes
on this server. Mounted as one ASGI app (``app.mount("/ui", console())``), so the whole
console is one entry in the app's routes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router

PATH = "/ui"
_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png"}
_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_HEADERS = {
    "Content-Security-Policy": _POLICY,
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


Endpoint = Callable[[Request], Awaitable[Response]]


def _file(body: bytes, media_type: str) -> Endpoint:
    async def serve(request: Request) -> Response:
        return Response(body, media_type=media_type, headers=_HEADERS)

    return serve


def console() -> Router:
    """The console's routes: the page, and one route per shipped asset (anything else: 404)."""
    folder = resources.files("webapi") / "ui"
    page = _file((folder / "index.html").read_bytes(), "text/html; charset=utf-8")
    routes = [Route("/", page, methods=["GET"])]
    for item in (folder / "static").iterdir():
        suffix = item.name[item.name.rfind(".") :]
        if item.is_file() and suffix in _TYPES:
            asset = _file(item.read_bytes(), _TYPES[suffix])
            routes.append(Route(f"/static/{item.name}", asset, methods=["GET"]))
    return Router(routes=routes)
