"""The web console at ``/ui``: one static page and its assets, all shipped in this package.

The page carries no job data: the browser app (ui/static/app.js) reads and writes through the
REST API with the user's token, so the console can do exactly what the token may do and no more.
A Content-Security-Policy keeps every request the page makes on this server.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, Response

router = APIRouter(prefix="/ui", tags=["console"], include_in_schema=False)

_UI = resources.files("webapi") / "ui"
_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png"}
_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_HEADERS = {"Content-Security-Policy": _POLICY, "X-Content-Type-Options": "nosniff"}


@router.get("")
@router.get("/")
async def page() -> Response:
    html = (_UI / "index.html").read_bytes()
    return Response(
        html, media_type="text/html; charset=utf-8", headers={**_HEADERS, "Cache-Control": "no-cache"}
    )


def _asset_route(name: str) -> None:
    """One route per shipped file: anything else under /ui/static is the router's plain 404."""
    body = (_UI / "static" / name).read_bytes()
    media_type = _TYPES[name[name.rfind(".") :]]

    async def asset() -> Response:
        return Response(body, media_type=media_type, headers={**_HEADERS, "Cache-Control": "no-cache"})

    router.add_api_route(f"/static/{name}", asset, methods=["GET"], name=f"ui-{name}")


for _item in _UI.joinpath("static").iterdir():
    if _item.is_file() and _item.name[_item.name.rfind(".") :] in _TYPES:
        _asset_route(_item.name)
