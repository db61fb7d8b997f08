"""Runs of a job on demand: run now, backfill, and reading one run.

webapi never calls ECS: a requested run is stored (create-if-absent per job and time, so it
is claimed once like a scheduled fire) and a ``run`` change event wakes the scheduld leader,
which launches it. The store is the truth: if the event is lost, the leader's poll of
pending runs still finds the run. Manual runs work for suspended jobs too.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request, Response

from common import schedule as schedule_syntax
from common.errors import InvalidJobError, RunNotFoundError
from common.models import (
    BackfillRequest,
    ChangeEvent,
    Job,
    Run,
    RunRequest,
    parse_backfill,
    parse_run_id,
    parse_run_request,
)
from webapi.body import json_body
from webapi.deps import bus_of, settings_of, store_of
from webapi.errors import JSONReply
from webapi.routes.jobs import _call, _publish, _responses, _write
from webapi.routing import DirectRoute
from webapi.schemas import BackfillReply, RunRef, run_ref

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/jobs", tags=["runs"], route_class=DirectRoute)

IDEMPOTENCY_HEADER = "idempotency-key"
MAX_KEY_LENGTH = 255
REQUESTED_BY = "webapi"  # the replica field of a run no scheduld has claimed yet


def _body_doc(model: type[RunRequest] | type[BackfillRequest], *, required: bool) -> dict[str, Any]:
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": required, "content": {"application/json": {"schema": schema}}}}


@router.post(
    "/{job_id}/runs",
    status_code=202,
    summary="Run a job now (also when suspended); the scheduld leader launches it",
    response_model=RunRef,
    responses=_responses(400, 404, 413, 415, 503),
    openapi_extra={
        **_body_doc(RunRequest, required=False),
        "parameters": [
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "maxLength": MAX_KEY_LENGTH},
                "description": "A retried POST with the same key returns the same run",
            }
        ],
    },
)
async def run_now(job_id: str, request: Request) -> Response:
    store = store_of(request)
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is not None and not 0 < len(key) <= MAX_KEY_LENGTH:
        raise InvalidJobError({"Idempotency-Key": f"must be 1-{MAX_KEY_LENGTH} characters"})
    raw = b""
    if request.headers.get("content-length", "0") != "0" or request.headers.get("transfer-encoding"):
        raw = await json_body(request, limit=settings_of(request).webapi.max_body_bytes)
    wanted = parse_run_request(raw)
    await _call(store, store.get_job, job_id)  # 404 for an unknown job
    run = Run(
        job_id=job_id,
        scheduled_for=datetime.now(UTC),
        status="requested",
        replica=REQUESTED_BY,
        token=0,
        trigger="manual",
        task_count=wanted.task_count,
        overrides=wanted.overrides,
        idempotency_key=key,
    )
    (stored,) = await _write(store.request_runs, [run])
    if _same(run, stored):
        logger.info("job %s: run %s requested", job_id, stored.run_id)
    else:
        logger.info("job %s: idempotent repeat of run %s", job_id, stored.run_id)
    reply = run_ref(job_id, stored.run_id)
    await _publish(bus_of(request), ChangeEvent(op="run", job_id=job_id), reply)
    return JSONReply(reply, status_code=202, headers={"Location": f"/jobs/{job_id}/runs/{stored.run_id}"})


@router.get(
    "/{job_id}/runs/{run_id}",
    summary="One run of a job",
    response_model=Run,
    response_model_exclude_none=True,
    responses=_responses(404, 503),
)
async def get_run(job_id: str, run_id: str, request: Request) -> Response:
    store = store_of(request)
    scheduled = parse_run_id(job_id, run_id)
    if scheduled is None:
        raise RunNotFoundError(job_id, run_id)
    run = await _call(store, store.get_run, job_id, scheduled)
    return JSONReply({"id": run.run_id, **run.to_document()})


@router.post(
    "/{job_id}/backfill",
    status_code=202,
    summary="Run every fire time of the job's schedule in a past window, oldest first",
    response_model=BackfillReply,
    responses=_responses(400, 404, 413, 415, 503),
    openapi_extra=_body_doc(BackfillRequest, required=True),
)
async def backfill(job_id: str, request: Request) -> Response:
    store = store_of(request)
    settings = settings_of(request)
    window = parse_backfill(await json_body(request, limit=settings.webapi.max_body_bytes))
    job = await _call(store, store.get_job, job_id)
    limit = settings.scheduler.max_backfill_runs
    times = _fire_times(job, window, limit=limit + 1)
    if len(times) > limit:
        raise InvalidJobError(
            {"end": f"the window holds more than {limit} fire times (scheduler.max_backfill_runs)"}
        )
    runs = [
        Run(
            job_id=job_id,
            scheduled_for=moment,
            status="requested",
            replica=REQUESTED_BY,
            token=0,
            trigger="backfill",
        )
        for moment in times
    ]
    stored = await _write(store.request_runs, runs) if runs else []
    new = sum(1 for run, kept in zip(runs, stored, strict=True) if _same(run, kept))
    logger.info("job %s: backfill of %d fire times, %d new runs", job_id, len(times), new)
    reply: dict[str, Any] = {"requested": new, "existing": len(times) - new, "runs": f"/jobs/{job_id}/runs"}
    if times:
        reply |= {"first": times[0].isoformat(), "last": times[-1].isoformat()}
    await _publish(bus_of(request), ChangeEvent(op="run", job_id=job_id), reply)
    return JSONReply(reply, status_code=202)


def _fire_times(job: Job, window: BackfillRequest, *, limit: int) -> list[datetime]:
    """The job's fire times in the window (and inside its own start/end), at most ``limit``."""
    trigger = schedule_syntax.build_trigger(
        job.schedule,
        timezone=job.timezone,
        start=job.schedule_start,
        end=job.schedule_end,
        jitter_seconds=job.jitter_seconds,
        jitter_key=job.id,
    )
    after = window.start - timedelta(microseconds=1)  # the start itself is in the window
    return schedule_syntax.upcoming(trigger, count=limit, after=after, until=window.end)


def _same(asked: Run, stored: Run) -> bool:
    """Whether the store kept the run we asked for (not one it already had)."""
    return stored.trigger == asked.trigger and stored.claimed_at == asked.claimed_at
