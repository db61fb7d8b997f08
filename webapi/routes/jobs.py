"""The Jobs resource (SPEC §1): list, create, read, update, delete.

Routes raise domain errors only; webapi/errors.py turns them into replies. Every successful
write is followed by a change event on the bus; if that fails the write still stands and the
client is told (PublishError carries the reply it would have had).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from common import schedule as schedule_syntax
from common.bus.base import EventBus
from common.errors import PublishError
from common.models import (
    ChangeEvent,
    JobCreate,
    JobUpdate,
    apply_update,
    new_job,
    parse_create,
    parse_update,
)
from common.store.base import JobStore
from webapi.body import json_body
from webapi.deps import bus_of, settings_of, store_of
from webapi.errors import JSONReply
from webapi.routing import DirectRoute
from webapi.schemas import (
    DeletedJob,
    ErrorReply,
    JobRef,
    JobReply,
    JobsPage,
    RunsPage,
    job_ref,
    job_reply,
)

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/jobs", tags=["jobs"], route_class=DirectRoute)

MAX_PAGE = 1000
T = TypeVar("T")

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorReply, "description": text}
    for code, text in {
        400: "Invalid input; `errors` names each bad field",
        404: "No such job",
        409: "A job with that id exists",
        413: "Body too large",
        415: "Body is not JSON",
        503: "Store or queue unavailable; for writes, the job was saved but scheduld not notified",
    }.items()
}


def _body_doc(model: type[JobCreate] | type[JobUpdate]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
        }
    }


def _responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: _ERRORS[code] for code in codes}


@router.get(
    "",
    summary="List jobs, ordered by id",
    response_model=JobsPage,
    response_model_exclude_none=True,
    responses=_responses(400, 503),
)
async def list_jobs(
    request: Request,
    skip: Annotated[int, Query(ge=0, le=2**62, description="Jobs to skip")] = 0,
    count: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Jobs per page")] = 10,
) -> Response:
    store = store_of(request)
    jobs = await _call(store, store.list_job_documents, skip=skip, count=count + 1)
    return JSONReply(_page("/jobs", "jobs", [job_reply(job) for job in jobs], skip=skip, count=count))


@router.post(
    "",
    status_code=201,
    summary="Create a job",
    response_model=JobRef,
    responses=_responses(400, 409, 413, 415, 503),
    openapi_extra=_body_doc(JobCreate),
)
async def create_job(request: Request) -> Response:
    store = store_of(request)
    create = parse_create(await json_body(request, limit=settings_of(request).webapi.max_body_bytes))
    job = new_job(create)
    await _write(store.create_job, job)
    logger.info("created job %s", job.id)
    reply = job_ref(job.id, warnings=schedule_syntax.frequency_warnings(job.schedule, timezone=job.timezone))
    await _publish(bus_of(request), ChangeEvent(op="add", job_id=job.id), reply)
    return JSONReply(reply, status_code=201, headers={"Location": f"/jobs/{job.id}"})


@router.get(
    "/{job_id}",
    summary="Get one job",
    response_model=JobReply,
    response_model_exclude_none=True,
    responses=_responses(404, 503),
)
async def get_job(job_id: str, request: Request) -> Response:
    store = store_of(request)
    document = await _call(store, store.get_job_document, job_id)
    return JSONReply(job_reply(document))


@router.get(
    "/{job_id}/runs",
    summary="A job's run history, newest first (one run per scheduled fire)",
    response_model=RunsPage,
    response_model_exclude_none=True,
    responses=_responses(400, 404, 503),
)
async def list_runs(
    job_id: str,
    request: Request,
    skip: Annotated[int, Query(ge=0, le=2**62, description="Runs to skip")] = 0,
    count: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Runs per page")] = 10,
) -> Response:
    store = store_of(request)
    await _call(store, store.get_job, job_id)  # 404 for an unknown job
    runs = await _call(store, store.list_runs, job_id, skip=skip, count=count + 1)
    items = [run.to_document() for run in runs]
    return JSONReply(_page(f"/jobs/{job_id}/runs", "runs", items, skip=skip, count=count))


@router.put(
    "/{job_id}",
    summary="Update a job: only the given fields change, null clears an optional field",
    response_model=JobRef,
    responses=_responses(400, 404, 413, 415, 503),
    openapi_extra=_body_doc(JobUpdate),
)
async def update_job(job_id: str, request: Request) -> Response:
    store = store_of(request)
    update = parse_update(await json_body(request, limit=settings_of(request).webapi.max_body_bytes))
    job = await _write(store.update_job, job_id, lambda job: apply_update(job, update))
    if logger.isEnabledFor(logging.INFO):
        changed = update.model_dump(by_alias=True, include=update.model_fields_set)
        logger.info("updated job %s: %s", job_id, ", ".join(sorted(changed)))
    warnings: list[str] = []
    if update.model_fields_set & {"schedule", "timezone"}:
        warnings = schedule_syntax.frequency_warnings(job.schedule, timezone=job.timezone)
    reply = job_ref(job_id, warnings=warnings)
    await _publish(bus_of(request), ChangeEvent(op="modify", job_id=job_id), reply)
    return JSONReply(reply)


@router.delete(
    "/{job_id}",
    summary="Delete a job",
    response_model=DeletedJob,
    responses=_responses(404, 503),
)
async def delete_job(job_id: str, request: Request) -> Response:
    store = store_of(request)
    await _write(store.delete_job, job_id)
    logger.info("deleted job %s", job_id)
    reply: dict[str, object] = {"id": job_id}
    await _publish(bus_of(request), ChangeEvent(op="remove", job_id=job_id), reply)
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


async def _call(store: JobStore, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A store read. A local store (``blocking`` False: SQLite) answers on the event loop, in
    tens of µs, since WAL readers never wait; a network store is called in the thread pool."""
    if store.blocking:
        return await run_in_threadpool(method, *args, **kwargs)
    return method(*args, **kwargs)


async def _write(method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A store write, always in the thread pool: even on SQLite it may wait for another
    process's write transaction (up to the busy timeout), which must never stall the loop."""
    return await run_in_threadpool(method, *args, **kwargs)


async def _publish(bus: EventBus, event: ChangeEvent, reply: dict[str, object]) -> None:
    """Publish and wait for the outcome (SPEC §5: the client learns of a failed publish);
    awaited without holding a worker thread."""
    try:
        await bus.publish_async(event)
    except PublishError as exc:
        exc.reply = reply
        raise
