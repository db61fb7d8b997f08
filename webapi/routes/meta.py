"""``/`` lists the endpoints; ``/spec`` and ``/docs`` are served by FastAPI (see app.py)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["meta"])

_RESOURCES = [
    {"link": {"href": "/jobs", "rel": "jobs", "title": "Jobs"}},
    {"link": {"href": "/spec", "rel": "spec", "title": "OpenAPI specification"}},
    {"link": {"href": "/docs", "rel": "docs", "title": "API documentation"}},
]


@router.get("/", summary="List the available endpoints")
async def home() -> dict[str, list[dict[str, dict[str, str]]]]:
    return {"resources": _RESOURCES}
