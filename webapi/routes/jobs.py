"""The Jobs resource: list, create, read, update, delete, and a job's runs.

Routes raise domain errors only; webapi/errors.py turns them into replies. Every write records
its change event with itself in the store's outbox and wakes the relay (webapi/relay.py), which
sends it to the ops queue: a write never waits on SQS. The router is included
behind ``webapi.auth.authorize`` (app.py); what the caller may see and touch is decided in
webapi/access.py.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from common import schedule as schedule_syntax
from common.config import Settings
from common.errors import JobNotFoundError
from common.models import (
    Job,
    JobCreate,
    JobUpdate,
    RunPublic,
    apply_update,
    new_job,
    parse_create,
    parse_update,
)
from common.store.base import JobStore
from webapi import access, audit
from webapi.auth import AUTHORIZED
from webapi.body import json_body
from webapi.deadline import STORE, waiting_on
from webapi.deps import PrincipalDep, ServicesDep
from webapi.errors import JSONReply
from webapi.fastpath import FastPathRoute
from webapi.limits import check_job_quota
from webapi.principal import Principal
from webapi.schemas import (
    DeletedJob,
    ErrorReply,
    JobRef,
    JobReply,
    JobsPage,
    RunsPage,
    inline_schema,
    job_ref,
    job_reply,
)
from webapi.storecalls import read as _call
from webapi.storecalls import write as _write

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/jobs", tags=["jobs"], route_class=FastPathRoute, dependencies=AUTHORIZED)
"""``FastPathRoute``: these routes skip FastAPI's general dependency solver (webapi/fastpath.py,
measured there); every dependency, ``authorize`` included, still runs on them."""

MAX_PAGE = 1000
SCAN_BATCH = 500

_ERROR_TEXTS: dict[int | str, str] = {
    400: "Invalid input; `errors` names each bad field",
    401: "No valid bearer token (`WWW-Authenticate: Bearer`)",
    403: "The token's role or task-definition scope does not allow this, or a job quota is reached",
    404: "No such job (or outside the token's task-definition scope)",
    409: "A job with that id exists, or it was changed concurrently (retry)",
    413: "Body too large",
    415: "Body is not JSON",
    429: "Too many writes from this token or client (`Retry-After` says when to retry)",
    503: (
        "Store or queue unavailable, or the request deadline passed (the message says which); "
        'for a write, the job may be saved: see README "Limits and quotas"'
    ),
    "4XX": "Another client error",
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorReply, "description": text} for code, text in _ERROR_TEXTS.items()
}


def _body_doc(model: type[JobCreate] | type[JobUpdate]) -> dict[str, Any]:
    """The body is read by ``create_body``/``update_body`` (for 413/415 and strict JSON
    parsing), so FastAPI cannot see it: document it the way FastAPI's docs show for bodies
    parsed by hand (``openapi_extra``)."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": inline_schema(model)}},
        }
    }


def _responses(*codes: int | str) -> dict[int | str, dict[str, Any]]:
    """The listed errors, 401/403, and "4XX": invalid input is 400 here, never FastAPI's 422,
    which FastAPI documents only for operations without a 4XX entry."""
    return {code: _ERRORS[code] for code in (*codes, 401, 403, "4XX")}


async def create_body(request: Request) -> JobCreate:
    return parse_create(await json_body(request, limit=_body_limit(request)))


async def update_body(request: Request) -> JobUpdate:
    return parse_update(await json_body(request, limit=_body_limit(request)))


def _body_limit(request: Request) -> int:
    """From the app's settings directly: a ``SettingsDep`` here would be one more dependency
    for FastAPI to solve per write (webapi/deps.py)."""
    settings: Settings = request.app.state.settings
    return settings.webapi.max_body_bytes


CreateBody = Annotated[JobCreate, Depends(create_body)]
UpdateBody = Annotated[JobUpdate, Depends(update_body)]


@router.get(
    "",
    summary="List jobs, ordered by id",
    response_model=JobsPage,
    response_model_exclude_none=True,
    responses=_responses(400, 503),
)
async def list_jobs(
    principal: PrincipalDep,
    services: ServicesDep,
    skip: Annotated[int, Query(ge=0, le=2**62, description="Jobs to skip")] = 0,
    count: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Jobs per page")] = 10,
) -> Response:
    store = services.store
    if principal.task_definitions is None:
        jobs = await _call(store, store.list_job_documents, skip=skip, count=count + 1)
    else:
        # may read many batches: in the thread pool whatever the store, not on the event loop
        with waiting_on(STORE):
            jobs = await run_in_threadpool(_scoped_documents, store, principal, skip=skip, count=count + 1)
    items = [job_reply(access.redact(principal, job, services.settings.auth)) for job in jobs]
    return JSONReply(_page("/jobs", "jobs", items, skip=skip, count=count))


@router.post(
    "",
    status_code=201,
    summary="Create a job",
    response_model=JobRef,
    responses=_responses(400, 409, 413, 415, 429, 503),
    openapi_extra=_body_doc(JobCreate),
)
async def create_job(
    request: Request,
    create: CreateBody,
    principal: PrincipalDep,
    services: ServicesDep,
) -> Response:
    settings = services.settings
    # the creator is recorded when there are principals to tell apart (per-token job quotas);
    # with auth.mode none every caller is "anonymous", and jobs carry no createdBy
    job = new_job(
        create,
        min_interval=settings.quotas.min_fire_interval_seconds,
        created_by=principal.name if settings.auth.mode == "tokens" else None,
    )
    access.check_create(principal, job, settings.auth)
    await check_job_quota(services.store, principal, settings)
    await _write(services.store, services.store.create_job, job)
    audit.record(request, outcome="ok", status=201, job_id=job.id)
    reply = job_ref(job.id, warnings=schedule_syntax.frequency_warnings(job.schedule, timezone=job.timezone))
    services.relay.wake()
    return JSONReply(reply, status_code=201, headers={"Location": f"/jobs/{job.id}"})


@router.get(
    "/{job_id}",
    summary="Get one job",
    response_model=JobReply,
    response_model_exclude_none=True,
    responses=_responses(404, 503),
)
async def get_job(job_id: str, principal: PrincipalDep, services: ServicesDep) -> Response:
    store = services.store
    document = await _call(store, store.get_job_document, job_id)
    if not access.visible(principal, document):
        raise JobNotFoundError(job_id)
    return JSONReply(job_reply(access.redact(principal, document, services.settings.auth)))


@router.get(
    "/{job_id}/runs",
    summary="A job's run history, newest first (one run per scheduled fire)",
    response_model=RunsPage,
    response_model_exclude_none=True,
    responses=_responses(400, 404, 503),
)
async def list_runs(
    job_id: str,
    principal: PrincipalDep,
    services: ServicesDep,
    skip: Annotated[int, Query(ge=0, le=2**62, description="Runs to skip")] = 0,
    count: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Runs per page")] = 10,
) -> Response:
    store = services.store
    access.scoped(principal, await _call(store, store.get_job, job_id))  # 404 for an unknown job
    runs = await _call(store, store.list_runs, job_id, skip=skip, count=count + 1)
    # a manual run's overrides are redacted like the job's
    auth = services.settings.auth
    items = [access.redact(principal, RunPublic.of(run).to_document(), auth) for run in runs]
    return JSONReply(_page(f"/jobs/{job_id}/runs", "runs", items, skip=skip, count=count))


@router.put(
    "/{job_id}",
    summary="Update a job: only the given fields change, null clears an optional field",
    response_model=JobRef,
    responses=_responses(400, 404, 413, 415, 429, 503),
    openapi_extra=_body_doc(JobUpdate),
)
async def update_job(
    job_id: str,
    request: Request,
    update: UpdateBody,
    principal: PrincipalDep,
    services: ServicesDep,
) -> Response:
    settings = services.settings

    def change(job: Job) -> Job:
        merged = apply_update(
            job, access.restore_redacted(update, job), min_interval=settings.quotas.min_fire_interval_seconds
        )
        access.check_change(principal, job, merged, settings.auth)
        return merged

    stored = await _write(services.store, services.store.update_job, job_id, change)
    audit.record(request, outcome="ok", status=200)
    warnings: list[str] = []
    if update.model_fields_set & {"schedule", "timezone"}:
        warnings = schedule_syntax.frequency_warnings(stored.schedule, timezone=stored.timezone)
    reply = job_ref(job_id, warnings=warnings)
    services.relay.wake()
    return JSONReply(reply)


@router.delete(
    "/{job_id}",
    summary="Delete a job",
    response_model=DeletedJob,
    responses=_responses(404, 429, 503),
)
async def delete_job(
    job_id: str,
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
) -> Response:
    store = services.store
    if principal.task_definitions is not None:
        job = await _call(store, store.get_job, job_id)
        access.check_change(principal, job, job, services.settings.auth)
    await _write(store, store.delete_job, job_id)
    audit.record(request, outcome="ok", status=200)
    reply: dict[str, object] = {"id": job_id}
    services.relay.wake()
    return JSONReply(reply)


def _page(path: str, key: str, items: list[Any], *, skip: int, count: int) -> dict[str, Any]:
    """A page of ``count`` items, read as ``count + 1`` so the next page is known to exist
    without counting the whole store; prev/next hrefs only when that page exists."""
    page: dict[str, Any] = {key: items[:count]}
    if skip > 0:
        page["prev"] = f"{path}?skip={max(0, skip - count)}&count={count}"
    if len(items) > count:
        page["next"] = f"{path}?skip={skip + count}&count={count}"
    return page


def _scoped_documents(
    store: JobStore, principal: Principal, *, skip: int, count: int
) -> list[dict[str, Any]]:
    """A page of the jobs in the principal's scope. The store cannot filter by glob, so this
    reads the jobs in order up to the page: a scoped listing costs O(skip + count) reads."""
    found: list[dict[str, Any]] = []
    offset = 0
    while len(found) < skip + count:
        batch = store.list_job_documents(skip=offset, count=SCAN_BATCH)
        found.extend(document for document in batch if access.visible(principal, document))
        if len(batch) < SCAN_BATCH:
            break
        offset += len(batch)
    return found[skip : skip + count]
