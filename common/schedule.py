"""The one parser of the 8-field schedule syntax.

``second minute hour day_of_week week day month year``: fields on the right may be omitted,
each field is an APScheduler 3.x CronTrigger expression, ``?`` in second/minute/hour is a random
value chosen once, and expressions that hold a space in APScheduler (``2nd fri``, ``last mon``)
are written with ``_``. webapi validates with this module and scheduld builds its triggers with
it, so every stored schedule is schedulable. EventBridge Scheduler's ``cron()``, ``rate()`` and
``at()`` are parsed by common/expressions.py, and ``jitterSeconds`` applied by common/jitter.py,
both reached only from here.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Generic, TypeVar
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

from common import expressions
from common.apscheduler_seams import SearchBudgetExceeded, SharedFieldsCronTrigger, metered_next_fire
from common.jitter import JitteredTrigger

logger = logging.getLogger(__name__)

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
_FIELD_CHARACTERS = r"0-9A-Za-z*/,?_-"  # ends with its literal "-": prefix others, never append
_FIELD = rf"[{_FIELD_CHARACTERS}]+"
SYNTAX_PATTERN = rf"^\s*{_FIELD}(\s+{_FIELD}){{0,7}}\s*$|{expressions.SYNTAX_PATTERN}"
"""What the OpenAPI document states: one to eight fields of these characters, or an
EventBridge expression (a string that does not match is rejected by ``split_fields``/
``cron_fields``/``expressions.build``)."""
SEARCH_STEPS = 1000
"""Field steps a validation may take to find the next fire: legitimate sparse schedules (Feb 29
on a Monday, 5th Friday of February) need under 300; ``0 0 0 * 53 * 2`` (week 53 in February)
would walk year by year to 9999 (~470 000 steps). The budget bounds what one validation costs."""
SCHEDULER_SEARCH_STEPS = 20 * SEARCH_STEPS
"""scheduld's budget per next-fire computation (off the event loop, so more generous)."""
TOO_SPARSE = "schedule too sparse or never fires"
MIN_INTERVAL_SECONDS = 1.0
"""Default shortest time allowed between two fires of one job (the syntax's finest)."""
_INTERVAL_SAMPLE = 10

_FIELDS_RE = re.compile(rf"[\s{_FIELD_CHARACTERS}]*")
"""Fields of ``_FIELD``'s characters between white space (what ``str.split`` splits on is what
``\\s`` matches, every code point checked)."""
A = TypeVar("A")
_system_random = random.SystemRandom()


class ScheduleError(ValueError):
    """A schedule expression that cannot be scheduled; the message says why."""


def search_next_fire(
    trigger: BaseTrigger, previous: datetime | None, now: datetime, *, steps: int = SEARCH_STEPS
) -> datetime | None:
    """``trigger.get_next_fire_time`` in at most ``steps`` field steps; ScheduleError beyond.
    Triggers that are not cron searches (rate, at, jitter over a bounded one) answer directly."""
    if not isinstance(trigger, CronTrigger):
        found: datetime | None = trigger.get_next_fire_time(previous, now)
        return found
    try:
        return metered_next_fire(trigger, previous, now, steps=steps)
    except SearchBudgetExceeded as exc:
        raise ScheduleError(f"{TOO_SPARSE} ({exc})") from exc


class BoundedCronTrigger(SharedFieldsCronTrigger):
    """The 8-field syntax's trigger: compiled fields shared between triggers
    (common/apscheduler_seams.py), and a next-fire search bounded to SCHEDULER_SEARCH_STEPS
    steps: a schedule that needs more is treated as firing no more (logged), instead of
    holding a worker for seconds."""

    __slots__ = ("_after",)

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        """Once ``now`` has reached ``previous_fire_time``, CronTrigger searches from just
        after ``previous_fire_time`` whatever ``now`` is, so the answer is remembered for it:
        the jobs of a herd share their trigger and APScheduler asks it twice per job and fire
        (bench/README.md, "Herds")."""
        settled = previous_fire_time is not None and now >= previous_fire_time and not self.jitter
        if settled:
            remembered: tuple[datetime, datetime | None] | None = getattr(self, "_after", None)
            if remembered is not None and remembered[0] == previous_fire_time:
                return remembered[1]
        found = _scheduler_search(self, previous_fire_time, now)
        if settled:
            assert previous_fire_time is not None
            self._after = (previous_fire_time, found)
        return found


def _check_length(expression: str) -> None:
    if not isinstance(expression, str):
        raise ScheduleError("must be a string")
    if len(expression) > MAX_LENGTH:
        raise ScheduleError(f"must be at most {MAX_LENGTH} characters")


def split_fields(expression: str) -> list[str]:
    """Split on white space and check the field count."""
    _check_length(expression)
    if not _FIELDS_RE.fullmatch(expression):  # one match for all fields: a cold start checks every job's
        raise ScheduleError("fields may hold only letters, digits and * / , - ? _")
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
        _check_length(expression)
        return expression  # EventBridge's '?' means "any day": stored as given
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
            _check_length(expression)
            trigger = expressions.build(
                expression, timezone=zone, start=start, end=end, search=_scheduler_search
            )
        else:
            kwargs = cron_fields(expression)
            trigger = BoundedCronTrigger(timezone=zone, start_date=start, end_date=end, **kwargs)
    except ValueError as exc:
        raise ScheduleError(str(exc)) from exc
    if jitter_seconds:
        return JitteredTrigger(trigger, key=jitter_key, jitter=jitter_seconds)
    return trigger


@dataclass(frozen=True)
class Timing:
    """What decides when a job fires (``Job.timing``); hashable, so scheduld builds one
    trigger for every job of equal timing."""

    schedule: str
    timezone: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    jitter_seconds: int | None = None
    jitter_key: str = ""
    """The job id, only when jittered (unjittered jobs of equal timing fire alike)."""

    def trigger(self) -> BaseTrigger:
        """The trigger the job fires by, jitter included (as every replica computes it)."""
        return build_trigger(
            self.schedule,
            timezone=self.timezone,
            start=self.start,
            end=self.end,
            jitter_seconds=self.jitter_seconds,
            jitter_key=self.jitter_key,
        )


def _scheduler_search(trigger: CronTrigger, previous: datetime | None, now: datetime) -> datetime | None:
    """A cron trigger's own search, bounded to SCHEDULER_SEARCH_STEPS (logged beyond)."""
    try:
        return search_next_fire(trigger, previous, now, steps=SCHEDULER_SEARCH_STEPS)
    except ScheduleError as exc:
        logger.error("trigger %s: %s; it is treated as never firing again", trigger, exc)
        return None


def next_fire_time(trigger: BaseTrigger, after: datetime | None = None) -> datetime | None:
    """The first fire time strictly after ``after`` (default: now)."""
    now = after or datetime.now(ZoneInfo("UTC"))
    result: datetime | None = trigger.get_next_fire_time(None, now + timedelta(microseconds=1))
    return result


def check_fires(
    trigger: BaseTrigger,
    *,
    after: datetime | None = None,
    min_interval: float = MIN_INTERVAL_SECONDS,
) -> datetime:
    """The first fire after ``after`` (default: now), in bounded time (SEARCH_STEPS per fire).

    ScheduleError if the schedule never fires, is too sparse to find a fire within the budget,
    or fires more often than ``min_interval`` seconds among its next few fires.
    """
    now = (after or datetime.now(ZoneInfo("UTC"))) + timedelta(microseconds=1)
    first = search_next_fire(trigger, None, now)
    if first is None:
        raise ScheduleError(f"{TOO_SPARSE} (no matching time from now on)")
    if min_interval > 1.0:
        previous = first
        for _ in range(_INTERVAL_SAMPLE):
            following = search_next_fire(trigger, previous, previous)
            if following is None:
                break
            if (following - previous).total_seconds() < min_interval:
                raise ScheduleError(
                    f"fires {following - previous} apart; at least {min_interval:g} s allowed"
                )
            previous = following
    return first


class _UntilNextFire(Generic[A]):
    """Answers about a schedule's fires from now on, kept while they cannot have changed: an
    answer computed at ``t0`` whose next fire is ``f`` holds for any ``now`` in [t0, f), since
    the fires after such a ``now`` are those after ``t0``. Creates and updates mostly repeat a
    few schedules, whose trigger build and next-fire search cost more than the rest of a write
    (bench/README.md, "Writes")."""

    LIMIT = 1024

    def __init__(self) -> None:
        self._answers: dict[Hashable, tuple[datetime, datetime, A]] = {}

    def get(self, key: Hashable, now: datetime) -> A | None:
        """The answer kept for ``key`` if it still holds at ``now``, else None."""
        found = self._answers.get(key)
        if found is not None and found[0] <= now < found[1]:
            return found[2]
        return None

    def put(self, key: Hashable, now: datetime, until: datetime, answer: A) -> None:
        if len(self._answers) >= self.LIMIT:
            self._answers.clear()  # plain and bounded: a miss costs one search
        self._answers[key] = (now, until, answer)


_validated: _UntilNextFire[datetime] = _UntilNextFire()
_warned: _UntilNextFire[tuple[str, ...]] = _UntilNextFire()
_FOREVER = datetime.max.replace(tzinfo=ZoneInfo("UTC"))


def validate_schedule(
    expression: str,
    *,
    timezone: str | None = None,
    min_interval: float = MIN_INTERVAL_SECONDS,
    after: datetime | None = None,
) -> str:
    """Resolve wildcards, check the schedule builds a trigger that fires after ``after``
    (default: now); return what to store."""
    resolved = resolve_wildcards(expression)
    key = (resolved, timezone, min_interval)
    now = after or datetime.now(ZoneInfo("UTC"))
    if _validated.get(key, now) is None:
        first = check_fires(build_trigger(resolved, timezone=timezone), after=now, min_interval=min_interval)
        _validated.put(key, now, first, first)
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


def frequency_warnings(
    expression: str, *, timezone: str | None = None, after: datetime | None = None
) -> list[str]:
    """A warning when the schedule fires more often than once a minute after ``after``
    (default: now) (accepted, as the 8-field syntax allows it, but often a Unix cron line
    read as seconds first)."""
    key = (expression, timezone)
    now = after or datetime.now(ZoneInfo("UTC"))
    known = _warned.get(key, now)
    if known is not None:
        return list(known)
    try:
        trigger = build_trigger(expression, timezone=timezone)
        if _one_second_a_minute(trigger):
            _warned.put(key, now, _FOREVER, ())
            return []
        times = upcoming(trigger, count=_SAMPLE, after=now)
    except ScheduleError:
        return []
    warnings = _frequency_warnings(expression, times)
    if times:
        _warned.put(key, now, times[0], tuple(warnings))
    return warnings


def _frequency_warnings(expression: str, times: list[datetime]) -> list[str]:
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    if not gaps or min(gaps) >= FREQUENT:
        return []
    seconds = min(gaps).total_seconds()
    warning = f"schedule fires as often as every {seconds:g} seconds (more often than once a minute)"
    if not expressions.is_expression(expression):
        warning += "; its first field is the second (for a Unix-style line use cron(...))"
    return [warning]


def _one_second_a_minute(trigger: BaseTrigger) -> bool:
    """A cron trigger without jitter whose second field is one value fires whole minutes
    apart (UTC offsets are whole minutes), so it never fires more often than once a minute:
    no need to search its next fires on every create (bench/README.md)."""
    if not isinstance(trigger, CronTrigger) or trigger.jitter:
        return False
    return any(field.name == "second" and str(field).isdigit() for field in trigger.fields)


def _zone(timezone: str | tzinfo | None) -> tzinfo:
    if timezone is None:
        return ZoneInfo("UTC")
    if isinstance(timezone, str):
        try:
            return ZoneInfo(timezone)
        except (ValueError, KeyError, OSError) as exc:
            raise ScheduleError(f"unknown timezone {timezone!r}") from exc
    return timezone
