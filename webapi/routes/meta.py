"""``/`` lists the endpoints; ``/spec``, ``/docs`` and ``/redoc`` are served by FastAPI with
the Swagger UI and ReDoc assets of fastapi-offline (app.py): no CDN. All anonymous: they carry
no job data."""

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
