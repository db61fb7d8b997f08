"""The one parser of the 8-field schedule syntax (SPEC §3).

``second minute hour day_of_week week day month year``: fields on the right may be omitted,
each field is an APScheduler 3.x CronTrigger expression, ``?`` in second/minute/hour is a random
value chosen once, and expressions that hold a space in APScheduler (``2nd fri``, ``last mon``)
are written with ``_``. webapi validates with this module and scheduld builds its triggers with
it, so every stored schedule is schedulable. EventBridge Scheduler's ``cron()``, ``rate()`` and
``at()`` are parsed by common/expressions.py, and ``jitterSeconds`` applied by common/jitter.py,
both reached only from here.
"""

from __future__ import annotations

import functools
import random
from datetime import datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.cron.fields import BaseField

from common import expressions
from common.jitter import JitteredTrigger

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


@functools.lru_cache(maxsize=4096)
def _compiled_field(field_class: type[BaseField], name: str, exprs: str, is_default: bool) -> BaseField:
    return field_class(name, exprs, is_default)


class SharedFieldsCronTrigger(CronTrigger):  # type: ignore[misc]
    """A CronTrigger whose compiled fields are shared with other triggers of equal fields.

    Compiling its eight fields is most of a CronTrigger's construction; fields never change
    once compiled, and schedules repeat field values (``0`` hours, ``*`` years), so a
    100 000-job cold start compiles a few hundred fields instead of 800 000.
    """

    __slots__ = ()
    FIELDS_MAP = {
        name: functools.partial(_compiled_field, field_class)
        for name, field_class in CronTrigger.FIELDS_MAP.items()
    }


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
    if expressions.is_expression(expression):
        split_fields(expression)  # the length check
        return expression  # EventBridge's '?' means "any day", stored as given
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
    jitter_seconds: float | None = None,
    jitter_key: str = "",
) -> BaseTrigger:
    """Build the APScheduler trigger for a stored schedule; ScheduleError if it cannot be.

    With ``jitter_seconds``, each fire is delayed by a stable offset derived from
    ``jitter_key`` (the job id) and the fire time (common/jitter.py)."""
    zone = _zone(timezone)
    trigger: BaseTrigger
    try:
        if expressions.is_expression(expression):
            split_fields(expression)
            trigger = expressions.build(expression, timezone=zone, start=start, end=end)
        else:
            kwargs = cron_fields(expression)
            trigger = SharedFieldsCronTrigger(timezone=zone, start_date=start, end_date=end, **kwargs)
    except ValueError as exc:
        raise ScheduleError(str(exc)) from exc
    if jitter_seconds:
        return JitteredTrigger(trigger, key=jitter_key, jitter=jitter_seconds)
    return trigger


def next_fire_time(trigger: BaseTrigger, after: datetime | None = None) -> datetime | None:
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


def upcoming(
    trigger: BaseTrigger, *, count: int, after: datetime | None = None, until: datetime | None = None
) -> list[datetime]:
    """The next ``count`` fire times after ``after`` (default: now) and not after ``until``,
    jitter included."""
    times: list[datetime] = []
    moment = after or datetime.now(ZoneInfo("UTC"))
    while len(times) < count:
        found = next_fire_time(trigger, moment)
        if found is None or (until is not None and found > until):
            break
        times.append(found)
        moment = found
    return times


FREQUENT = timedelta(minutes=1)
_SAMPLE = 12


def frequency_warnings(expression: str, *, timezone: str | None = None) -> list[str]:
    """A warning when the schedule fires more often than once a minute (accepted, as the
    seed accepts it, but often a Unix cron line read as seconds first)."""
    try:
        times = upcoming(build_trigger(expression, timezone=timezone), count=_SAMPLE)
    except ScheduleError:
        return []
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    if not gaps or min(gaps) >= FREQUENT:
        return []
    seconds = min(gaps).total_seconds()
    warning = f"schedule fires as often as every {seconds:g} seconds (more often than once a minute)"
    if not expressions.is_expression(expression):
        warning += "; its first field is the second (for a Unix-style line use cron(...))"
    return [warning]


def _zone(timezone: str | tzinfo | None) -> tzinfo:
    if timezone is None:
        return ZoneInfo("UTC")
    if isinstance(timezone, str):
        try:
            return ZoneInfo(timezone)
        except (ValueError, KeyError, OSError) as exc:
            raise ScheduleError(f"unknown timezone {timezone!r}") from exc
    return timezone
