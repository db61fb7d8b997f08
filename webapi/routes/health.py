"""Probes and scrapes: ``/healthz`` (alive), ``/readyz`` (dependencies answer), ``/metrics``.

Anonymous by design, even when authentication is on: orchestrators and Prometheus hold no
token. None of them reveals a path, URL or error detail: readiness says per dependency only
``ok``, ``failing`` or ``timeout`` and how long it took (details go to the log).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response

from common.health import Checker, bus_check, store_check
from common.metrics import exposition
from webapi.errors import JSONReply

# Not in the OpenAPI document: probes for orchestrators and Prometheus, not API operations
# (README "Operating" documents them); every operation the document lists needs a token.
router = APIRouter(tags=["health"], include_in_schema=False)


@router.get("/healthz", summary="Liveness: the process answers (no dependency is checked)")
async def healthz(request: Request) -> Response:
    return JSONReply({"status": "ok"})


@router.get(
    "/readyz",
    summary="Readiness: the job store and the ops queue answer",
    responses={503: {"description": "A dependency is failing or timed out"}},
)
async def readyz(request: Request) -> Response:
    checker = _checker(request)
    ready, checks = await asyncio.to_thread(checker.run)
    checker.record(ready)
    body: dict[str, Any] = {"status": "ready" if ready else "not ready", "checks": checks}
    return JSONReply(body, status_code=200 if ready else 503, headers={"Cache-Control": "no-store"})


@router.get("/metrics", summary="Prometheus metrics of this process", response_class=Response)
async def metrics(request: Request) -> Response:
    data, content_type = exposition(request.headers.get("accept"))
    return Response(data, media_type=content_type)


def _checker(request: Request) -> Checker:
    """One checker per app, built on first use: store and bus exist only after startup."""
    state = request.app.state
    checker: Checker | None = getattr(state, "health_checker", None)
    if checker is None:
        checker = Checker("webapi", {"store": store_check(state.store), "queue": bus_check(state.bus)})
        state.health_checker = checker
    return checker
