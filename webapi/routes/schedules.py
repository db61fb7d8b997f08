"""Upcoming fire times: of a stored job, and of a schedule being typed (the console's preview).

Both are computed with common/schedule.py, the parser scheduld builds its triggers with, so
what is shown is what will fire (scheduleStart/scheduleEnd and timezone included).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from common import schedule as schedule_syntax
from common.errors import InvalidJobError
from common.models import Job, new_job, parse_create
from webapi import access
from webapi.auth import AUTHORIZED
from webapi.deps import PrincipalDep, StoreDep
from webapi.describe import describe_schedule
from webapi.errors import JSONReply
from webapi.schemas import ErrorReply

router = APIRouter(tags=["schedules"], dependencies=AUTHORIZED)

MAX_FIRES = 100
Count = Annotated[int, Query(ge=1, le=MAX_FIRES, description="How many fire times (at most 100)")]


class UpcomingFires(BaseModel):
    """Next fire times, ISO-8601 in the schedule's timezone; empty when it never fires again."""

    id: str | None = None
    schedule: str
    timezone: str
    description: str
    suspended: bool = False
    fires: list[datetime]


_ERROR_TEXTS: dict[int | str, str] = {
    400: "Invalid input; `errors` names each bad field",
    401: "No valid bearer token (`WWW-Authenticate: Bearer`)",
    403: "The token's role does not allow this",
    404: "No such job (or outside the token's task-definition scope)",
    503: "Store unavailable",
    "4XX": "Another client error",
}


def _responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """As jobs.py documents them: the listed errors, 401/403 and "4XX" (which keeps FastAPI
    from documenting its 422: invalid input is 400 here)."""
    listed: tuple[int | str, ...] = (*codes, 401, 403, "4XX")
    return {code: {"model": ErrorReply, "description": _ERROR_TEXTS[code]} for code in listed}


@router.get(
    "/jobs/{job_id}/upcoming",
    summary="A job's next fire times (none while suspended)",
    response_model=UpcomingFires,
    responses=_responses(400, 404, 503),
)
async def upcoming(job_id: str, store: StoreDep, principal: PrincipalDep, count: Count = 10) -> Response:
    job: Job = await run_in_threadpool(store.get_job, job_id) if store.blocking else store.get_job(job_id)
    access.scoped(principal, job)
    suspended = bool(job.suspended)
    fires = [] if suspended else _fires(job.timing, count)
    return JSONReply(
        {
            "id": job.id,
            "schedule": job.schedule,
            "timezone": job.timezone or "UTC",
            "description": describe_schedule(job.schedule),
            "suspended": suspended,
            "fires": fires,
        }
    )


@router.get(
    "/schedules/preview",
    summary="Next fire times of a schedule not saved yet (what a job with it would do)",
    response_model=UpcomingFires,
    responses=_responses(400),
)
async def preview(
    schedule: Annotated[str, Query(description="8-field schedule, as a job's `schedule`")],
    timezone: Annotated[str | None, Query(description="IANA timezone; UTC if absent")] = None,
    schedule_start: Annotated[str | None, Query(alias="scheduleStart", description="ISO-8601")] = None,
    schedule_end: Annotated[str | None, Query(alias="scheduleEnd", description="ISO-8601")] = None,
    count: Count = 10,
) -> Response:
    document = {"taskDefinition": "preview", "schedule": schedule}
    for name, value in (
        ("timezone", timezone),
        ("scheduleStart", schedule_start),
        ("scheduleEnd", schedule_end),
    ):
        if value is not None:
            document[name] = value
    # Validated exactly as a job's create would be: one set of rules and messages.
    job = new_job(parse_create(orjson.dumps(document)))
    fires = _fires(job.timing, count)
    return JSONReply(
        {
            "schedule": job.schedule,
            "timezone": job.timezone or "UTC",
            "description": describe_schedule(job.schedule),
            "fires": fires,
        }
    )


def _fires(timing: schedule_syntax.Timing, count: int) -> list[str]:
    """The next fires as scheduld will fire them: jitter included, as every replica computes it."""
    try:
        trigger = timing.trigger()
    except schedule_syntax.ScheduleError as exc:
        raise InvalidJobError({"schedule": str(exc)}, "Invalid schedule") from exc
    fires: list[str] = []
    previous: datetime | None = None
    now = datetime.now(UTC) + timedelta(microseconds=1)
    while len(fires) < count:
        try:  # each search bounded by common/schedule.py's step budget
            fire = schedule_syntax.search_next_fire(trigger, previous, previous or now)
        except schedule_syntax.ScheduleError:
            break  # the next fire is too far to find cheaply: list the ones found
        if fire is None:
            break
        fires.append(fire.isoformat())
        previous = fire
    return fires
