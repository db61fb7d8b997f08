"""Runs of a job on demand: run now, backfill, and reading one run.

webapi never calls ECS: a requested run is stored (create-if-absent per job and time, so it
is claimed once like a scheduled fire) and a ``run`` change event wakes the scheduld leader,
which launches it. The store is the truth: if the event is lost, the leader's poll of
pending runs still finds the run. Manual runs work for suspended jobs too. Running and
backfilling need the ``run`` role; reading a run needs ``read``; the router is included
behind ``webapi.auth.authorize`` (app.py) like every API route.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from common import schedule as schedule_syntax
from common.errors import InvalidJobError, RunNotFoundError
from common.models import (
    BackfillRequest,
    Job,
    Run,
    RunPublic,
    RunRequest,
    parse_backfill,
    parse_run_id,
    parse_run_request,
)
from webapi import access, audit
from webapi.auth import AUTHORIZED, requires
from webapi.body import json_body
from webapi.deps import PrincipalDep, RelayDep, SettingsDep, StoreDep
from webapi.errors import JSONReply
from webapi.principal import Principal
from webapi.routes.jobs import _responses
from webapi.schemas import BackfillReply, RunRef, inline_schema, run_ref
from webapi.storecalls import read as _call
from webapi.storecalls import write as _write

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/jobs", tags=["runs"], dependencies=AUTHORIZED)

IDEMPOTENCY_HEADER = "idempotency-key"
MAX_KEY_LENGTH = 255
REQUESTED_BY = "webapi"  # the replica field of a run no scheduld has claimed yet


def _body_doc(model: type[RunRequest] | type[BackfillRequest], *, required: bool) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": required,
            "content": {"application/json": {"schema": inline_schema(model)}},
        }
    }


async def run_body(request: Request, settings: SettingsDep) -> RunRequest:
    """Optional: no body runs the job as it is."""
    if request.headers.get("content-length", "0") == "0" and not request.headers.get("transfer-encoding"):
        return RunRequest()
    return parse_run_request(await json_body(request, limit=settings.webapi.max_body_bytes))


async def backfill_body(request: Request, settings: SettingsDep) -> BackfillRequest:
    return parse_backfill(await json_body(request, limit=settings.webapi.max_body_bytes))


RunBody = Annotated[RunRequest, Depends(run_body)]
BackfillBody = Annotated[BackfillRequest, Depends(backfill_body)]


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
@requires("run")
async def run_now(
    job_id: str,
    request: Request,
    wanted: RunBody,
    store: StoreDep,
    relay: RelayDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> Response:
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is not None and not 0 < len(key) <= MAX_KEY_LENGTH:
        raise InvalidJobError({"Idempotency-Key": f"must be 1-{MAX_KEY_LENGTH} characters"})
    job = await _job_in_scope(store, principal, job_id)
    if wanted.overrides is not None:  # command overrides need the same right as on the job
        access.check_change(
            principal, job, job.model_copy(update={"overrides": wanted.overrides}), settings.auth
        )
    run = Run(
        job_id=job_id,
        scheduled_for=datetime.now(UTC),
        status="requested",
        replica=REQUESTED_BY,
        token=0,
        trigger="manual",
        principal=principal.name,
        task_count=wanted.task_count,
        overrides=wanted.overrides,
        idempotency_key=key,
    )
    (stored,) = await _write(store, store.request_runs, [run])
    if _same(run, stored):
        logger.info("job %s: run %s requested by %s", job_id, stored.run_id, principal.name)
    else:
        logger.info("job %s: idempotent repeat of run %s", job_id, stored.run_id)
    audit.record(request, outcome="ok", status=202, job_id=job_id)
    reply = run_ref(job_id, stored.run_id)
    relay.wake()
    return JSONReply(reply, status_code=202, headers={"Location": f"/jobs/{job_id}/runs/{stored.run_id}"})


@router.get(
    "/{job_id}/runs/{run_id}",
    summary="One run of a job",
    response_model=RunPublic,
    response_model_exclude_none=True,
    responses=_responses(404, 503),
)
async def get_run(
    job_id: str, run_id: str, store: StoreDep, principal: PrincipalDep, settings: SettingsDep
) -> Response:
    await _job_in_scope(store, principal, job_id)
    scheduled = parse_run_id(job_id, run_id)
    if scheduled is None:
        raise RunNotFoundError(job_id, run_id)
    run = await _call(store, store.get_run, job_id, scheduled)
    document = access.redact(principal, RunPublic.of(run).to_document(), settings.auth)
    return JSONReply({"id": run.run_id, **document})


@router.post(
    "/{job_id}/backfill",
    status_code=202,
    summary="Run every fire time of the job's schedule in a past window, oldest first",
    response_model=BackfillReply,
    responses=_responses(400, 404, 413, 415, 503),
    openapi_extra=_body_doc(BackfillRequest, required=True),
)
@requires("run")
async def backfill(
    job_id: str,
    request: Request,
    window: BackfillBody,
    store: StoreDep,
    relay: RelayDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> Response:
    job = await _job_in_scope(store, principal, job_id)
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
            principal=principal.name,
        )
        for moment in times
    ]
    stored = await _write(store, store.request_runs, runs) if runs else []
    new = sum(1 for run, kept in zip(runs, stored, strict=True) if _same(run, kept))
    logger.info(
        "job %s: backfill of %d fire times by %s, %d new runs", job_id, len(times), principal.name, new
    )
    audit.record(request, outcome="ok", status=202, job_id=job_id)
    reply: dict[str, Any] = {"requested": new, "existing": len(times) - new, "runs": f"/jobs/{job_id}/runs"}
    if times:
        reply |= {"first": times[0].isoformat(), "last": times[-1].isoformat()}
    relay.wake()
    return JSONReply(reply, status_code=202)


async def _job_in_scope(store: Any, principal: Principal, job_id: str) -> Job:
    """The job, or 404 when it does not exist for this caller (outside its scope)."""
    return access.scoped(principal, await _call(store, store.get_job, job_id))


def _fire_times(job: Job, window: BackfillRequest, *, limit: int) -> list[datetime]:
    """The job's fire times in the window (and inside its own start/end), at most ``limit``;
    jittered like its scheduled fires, so a time that already ran is recognised."""
    trigger = job.timing.trigger()
    after = window.start - timedelta(microseconds=1)  # the start itself is in the window
    return schedule_syntax.upcoming(trigger, count=limit, after=after, until=window.end)


def _same(asked: Run, stored: Run) -> bool:
    """Whether the store kept the run we asked for (not one it already had)."""
    return stored.trigger == asked.trigger and stored.claimed_at == asked.claimed_at
