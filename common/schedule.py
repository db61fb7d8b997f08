"""The one parser of the 8-field schedule syntax.

``second minute hour day_of_week week day month year``: fields on the right may be omitted,
each field is an APScheduler 3.x CronTrigger expression, ``?`` in second/minute/hour is a random
value chosen once, and expressions that hold a space in APScheduler (``2nd fri``, ``last mon``)
are written with ``_``. webapi validates with this module and scheduld builds its triggers with
it, so every stored schedule is schedulable.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from common.apscheduler_seams import SharedFieldsCronTrigger

FIELD_NAMES: tuple[str, ...] = (
    "second",
    "minute",
    "hour",
    "day_of_week",
    "week",
    "day",
    "month",
    "year",
)
WILDCARD = "?"
_WILDCARD_RANGES: dict[str, tuple[int, int]] = {"second": (0, 59), "minute": (0, 59), "hour": (0, 23)}
MAX_LENGTH = 256

_system_random = random.SystemRandom()


class ScheduleError(ValueError):
    """A schedule expression that cannot be scheduled; the message says why."""


def split_fields(expression: str) -> list[str]:
    """Split on white space and check the field count."""
    if not isinstance(expression, str):
        raise ScheduleError("must be a string")
    if len(expression) > MAX_LENGTH:
        raise ScheduleError(f"must be at most {MAX_LENGTH} characters")
    fields = expression.split()
    if not fields:
        raise ScheduleError("must have at least the second field")
    if len(fields) > len(FIELD_NAMES):
        raise ScheduleError(f"has {len(fields)} fields; at most {len(FIELD_NAMES)}: {' '.join(FIELD_NAMES)}")
    return fields


def resolve_wildcards(expression: str, rng: random.Random | None = None) -> str:
    """Replace each ``?`` in second/minute/hour with a random value in range.

    Called once at create/update time; the result is what is stored, so the choice is stable.
    """
    chooser = rng or _system_random
    fields = split_fields(expression)
    resolved = []
    for name, value in zip(FIELD_NAMES, fields, strict=False):
        if value == WILDCARD and name in _WILDCARD_RANGES:
            low, high = _WILDCARD_RANGES[name]
            value = str(chooser.randint(low, high))
        resolved.append(value)
    return " ".join(resolved)


def cron_fields(expression: str) -> dict[str, str]:
    """The CronTrigger keyword arguments for a (wildcard-free) schedule expression."""
    fields = split_fields(expression)
    kwargs: dict[str, str] = {}
    for name, value in zip(FIELD_NAMES, fields, strict=False):
        if WILDCARD in value:
            allowed = "second, minute and hour" if name not in _WILDCARD_RANGES else "whole fields"
            raise ScheduleError(f"'?' in {name} field: only allowed as {allowed}")
        kwargs[name] = value.replace("_", " ")
    return kwargs


def build_trigger(
    expression: str,
    *,
    timezone: str | tzinfo | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> CronTrigger:
    """Build the APScheduler trigger for a stored schedule; ScheduleError if it cannot be."""
    kwargs = cron_fields(expression)
    zone = _zone(timezone)
    try:
        return SharedFieldsCronTrigger(timezone=zone, start_date=start, end_date=end, **kwargs)
    except ValueError as exc:
        raise ScheduleError(str(exc)) from exc


def next_fire_time(trigger: CronTrigger, after: datetime | None = None) -> datetime | None:
    """The first fire time strictly after ``after`` (default: now)."""
    now = after or datetime.now(ZoneInfo("UTC"))
    result: datetime | None = trigger.get_next_fire_time(None, now + timedelta(microseconds=1))
    return result


def validate_schedule(expression: str, *, timezone: str | None = None) -> str:
    """Resolve wildcards, check the schedule builds a trigger that fires; return what to store."""
    resolved = resolve_wildcards(expression)
    trigger = build_trigger(resolved, timezone=timezone)
    if next_fire_time(trigger) is None:
        raise ScheduleError("never fires (no matching time from now on)")
    return resolved


def _zone(timezone: str | tzinfo | None) -> tzinfo:
    if timezone is None:
        return ZoneInfo("UTC")
    if isinstance(timezone, str):
        try:
            return ZoneInfo(timezone)
        except (ValueError, KeyError, OSError) as exc:
            raise ScheduleError(f"unknown timezone {timezone!r}") from exc
    return timezone
