"""EventBridge Scheduler expressions: ``cron(...)``, ``rate(...)`` and ``at(...)``.

Reached only through common/schedule.py (the one entry point both processes use), which keeps
the 8-field syntax as it was. Each expression becomes an APScheduler 3.x trigger:

- ``cron(minutes hours day-of-month month day-of-week year)``: six fields, as EventBridge
  documents them. One of day-of-month and day-of-week must be ``?``; day-of-week counts
  ``1``-``7`` from Sunday (or ``SUN``-``SAT``); ``L`` is the last day of the month (or, in
  day-of-week, Saturday; ``5L`` the month's last Thursday), ``15W`` the weekday nearest the
  15th (never leaving the month), ``LW`` the month's last weekday, and ``3#2`` its second
  Tuesday. Evaluated in the job's timezone; a local time that does not exist (the hour skipped
  when clocks go forward) is skipped, and one that happens twice runs once (EventBridge's
  documented daylight-saving behaviour).
- ``rate(value unit)``, unit ``minute(s)``, ``hour(s)`` or ``day(s)``: fixed durations (a day
  is 24 hours, whatever the clocks do), counted from ``scheduleStart``, or, without one, from
  2000-01-01T00:00 in the job's timezone, so every replica and restart agrees on the grid.
- ``at(yyyy-mm-ddThh:mm:ss)``: once, at that local time in the job's timezone.

Errors are ``ValueError`` with a message for the user; schedule.py turns them into its own.
"""

from __future__ import annotations

import re
from calendar import monthrange
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from common.apscheduler_seams import DayExpression, ExtendedCronTrigger

_FORM = re.compile(r"^\s*(cron|rate|at)\((.*)\)\s*$", re.IGNORECASE | re.DOTALL)
SYNTAX_PATTERN = r"^\s*(cron|rate|at)\([0-9A-Za-z*/,?#:\- ]+\)\s*$"
"""What the OpenAPI document states for these forms (each is then parsed in full)."""
_RATE = re.compile(r"^(\d{1,6}) +(minutes?|hours?|days?)$", re.IGNORECASE)
_AT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
RATE_ANCHOR = datetime(2000, 1, 1)
"""Where a rate without ``scheduleStart`` counts from (local time of the job's timezone)."""

_CRON_FIELDS = ("minutes", "hours", "day-of-month", "month", "day-of-week", "year")
_EB_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # EventBridge: 1 = SUN
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""CronTrigger's day_of_week names (its documented syntax), 0 = Monday."""
_ORDINALS = ("1st", "2nd", "3rd", "4th", "5th")
_SIMPLE = re.compile(r"^[0-9*/,\-]+$")
_MONTH = re.compile(r"^[0-9a-z*/,\-]+$")


def is_expression(expression: str) -> bool:
    """True for ``cron(...)``, ``rate(...)`` and ``at(...)`` (anything else is the 8-field syntax)."""
    return _FORM.match(expression) is not None


Search = Callable[[CronTrigger, datetime | None, datetime], datetime | None]
"""CronTrigger's own next-fire search, as common/schedule.py bounds it."""


def build(
    expression: str,
    *,
    timezone: tzinfo,
    start: datetime | None = None,
    end: datetime | None = None,
    search: Search | None = None,
) -> BaseTrigger:
    """The trigger for an EventBridge expression; ValueError says what is wrong. ``search``
    replaces CronTrigger's unbounded search for ``cron()`` (schedule.py passes its budget)."""
    match = _FORM.match(expression)
    if match is None:
        raise ValueError("not a cron(), rate() or at() expression")
    form, body = match.group(1).lower(), match.group(2).strip()
    if form == "rate":
        return _rate(body, timezone=timezone, start=start, end=end)
    if form == "at":
        return _at(body, timezone=timezone, start=start, end=end)
    kwargs = cron_kwargs(body)
    try:
        trigger = EventBridgeCronTrigger(timezone=timezone, start_date=start, end_date=end, **kwargs)
    except ValueError as exc:
        raise ValueError(f"cron() {_culprit(kwargs)}: {exc}") from None
    trigger.search = search or CronTrigger.get_next_fire_time
    return trigger


_EB_NAMES = {
    "minute": "minutes",
    "hour": "hours",
    "day": "day-of-month",
    "month": "month",
    "day_of_week": "day-of-week",
    "year": "year",
}


def _culprit(kwargs: dict[str, str]) -> str:
    """Which field APScheduler refused, in EventBridge's names."""
    name = EventBridgeCronTrigger.refused_field(kwargs)
    return "expression" if name is None else f"{_EB_NAMES.get(name, name)} field"


# --- rate() and at() ------------------------------------------------------------------------


def _rate(body: str, *, timezone: tzinfo, start: datetime | None, end: datetime | None) -> BaseTrigger:
    match = _RATE.match(body)
    if match is None:
        raise ValueError("rate() takes 'value unit': a positive whole number and minutes, hours or days")
    value, unit = int(match.group(1)), match.group(2).lower().rstrip("s")
    if value < 1:
        raise ValueError("rate() value must be at least 1")
    anchor = start or RATE_ANCHOR.replace(tzinfo=timezone)
    return IntervalTrigger(
        seconds=value * _UNIT_SECONDS[unit], start_date=anchor.astimezone(UTC), end_date=end, timezone=UTC
    )


class AtTrigger(BaseTrigger):  # type: ignore[misc]
    """Fires once at ``run_date`` (inside the job's window), never for a moment after it."""

    __slots__ = ("run_date",)

    def __init__(self, run_date: datetime | None) -> None:
        self.run_date = run_date

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        if self.run_date is None or previous_fire_time is not None or self.run_date < now:
            return None
        return self.run_date

    def __str__(self) -> str:
        return f"at[{self.run_date}]"


def _at(body: str, *, timezone: tzinfo, start: datetime | None, end: datetime | None) -> BaseTrigger:
    if not _AT.match(body):
        raise ValueError("at() takes a local time yyyy-mm-ddThh:mm:ss")
    try:
        local = datetime.fromisoformat(body)
    except ValueError as exc:
        raise ValueError(f"at() time is not a valid date and time ({exc})") from None
    run_date = local.replace(tzinfo=timezone).astimezone(UTC)
    if (start is not None and run_date < start) or (end is not None and run_date > end):
        return AtTrigger(None)
    return AtTrigger(run_date)


# --- cron() ---------------------------------------------------------------------------------


class NearestWeekdayExpression(DayExpression):
    """Day of month ``15w`` (the weekday nearest the 15th) or ``lw`` (the last weekday)."""

    value_re = re.compile(r"(?P<day>\d{1,2}|l)w$", re.IGNORECASE)

    def __init__(self, day: str) -> None:
        super().__init__()
        self.day = None if day.lower() == "l" else int(day)
        if self.day is not None and not 1 <= self.day <= 31:
            raise ValueError(f"{day}W: the day must be 1-31")

    def next_day(self, year: int, month: int, from_day: int) -> int | None:
        first_weekday, last_day = monthrange(year, month)
        day = last_day if self.day is None else min(self.day, last_day)
        weekday = (first_weekday + day - 1) % 7  # 0 = Monday
        if weekday == 5:  # Saturday: Friday before, unless that leaves the month
            day = day - 1 if day > 1 else day + 2
        elif weekday == 6:  # Sunday: Monday after, unless that leaves the month
            day = day + 1 if day < last_day else day - 2
        return day if day >= from_day else None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NearestWeekdayExpression) and self.day == other.day

    def __hash__(self) -> int:
        return hash(("w", self.day))

    def __str__(self) -> str:
        return f"{'l' if self.day is None else self.day}w"


class EventBridgeCronTrigger(ExtendedCronTrigger):
    """CronTrigger with ``W`` days, skipping local times that do not exist (DST gaps)."""

    __slots__ = ("search",)
    DAY_EXPRESSIONS = (NearestWeekdayExpression,)

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        candidate: datetime | None = self.search(self, previous_fire_time, now)
        for _ in range(8):  # a gap or a repeat is an hour or two; a few steps always leave it
            if candidate is None:
                return None
            resume = self._resume_after(candidate)
            if resume is None:  # in UTC: an ambiguous local time never equals another zone's
                return candidate.astimezone(UTC)
            candidate = self.search(self, None, resume)
        return candidate

    def _resume_after(self, moment: datetime) -> datetime | None:
        """None if ``moment`` is a real first occurrence of a local time the fields name;
        otherwise where to search on from (past a DST gap, or past a repeated hour)."""
        local = moment.astimezone(UTC).astimezone(self.timezone)  # normalised: a gap time moves
        if not self.fields_accept(local):
            return moment + timedelta(seconds=1)
        first = local.replace(fold=0)
        if local.fold and first.utcoffset() != local.utcoffset():
            return moment + (first.utcoffset() - local.utcoffset()) + timedelta(seconds=1)  # type: ignore[operator]
        return None


def cron_kwargs(body: str) -> dict[str, str]:
    """CronTrigger keyword arguments for the six fields of a ``cron()`` expression."""
    fields = body.lower().split()
    if len(fields) != len(_CRON_FIELDS):
        raise ValueError(f"cron() has {len(fields)} fields; it takes 6: {' '.join(_CRON_FIELDS)}")
    minutes, hours, dom, month, dow, year = fields
    for name, value, pattern in (
        ("minutes", minutes, _SIMPLE),
        ("hours", hours, _SIMPLE),
        ("month", month, _MONTH),
        ("year", year, _SIMPLE),
    ):
        if not pattern.match(value):
            names = ", names" if name == "month" else ""
            raise ValueError(f"cron() {name} field {value!r}: only digits{names} and , - * / are allowed")
    for number in re.findall(r"\d+", year):
        if not 1970 <= int(number) <= 2199 and f"/{number}" not in year:
            raise ValueError(f"cron() year {number} is outside 1970-2199")
    if (dom == "?") == (dow == "?"):
        raise ValueError("cron(): exactly one of day-of-month and day-of-week must be '?'")
    kwargs = {"second": "0", "minute": minutes, "hour": hours, "month": month, "year": year}
    if dow == "?":
        kwargs["day"] = _day_of_month(dom)
        kwargs["day_of_week"] = "*"
    else:
        kwargs["day"], kwargs["day_of_week"] = _day_of_week(dow)
    return kwargs


def _day_of_month(value: str) -> str:
    if value == "l":
        return "last"
    if NearestWeekdayExpression.value_re.match(value):
        return value
    if not _SIMPLE.match(value):
        raise ValueError(f"cron() day-of-month {value!r}: use 1-31 with , - * /, or L, LW, 15W")
    return value


def _weekday(token: str) -> int:
    """An EventBridge weekday (1-7 from Sunday, or a name) as APScheduler's 0 = Monday."""
    if token.isdigit():
        number = int(token)
        if not 1 <= number <= 7:
            raise ValueError(f"cron() day-of-week {token}: use 1-7 (1 is Sunday) or SUN-SAT")
        name = _EB_WEEKDAYS[number - 1]
    elif token in _EB_WEEKDAYS:
        name = token
    else:
        raise ValueError(f"cron() day-of-week {token!r}: use 1-7 (1 is Sunday) or SUN-SAT")
    return int(WEEKDAYS.index(name))


def _day_of_week(value: str) -> tuple[str, str]:
    """(day, day_of_week) for CronTrigger: ``#`` and ``nL`` become day-field positions."""
    if value == "*":
        return "*", "*"
    if value == "l":
        return "*", "sat"
    if "#" in value:
        day, _, nth = value.partition("#")
        if "," in value or not nth.isdigit() or not 1 <= int(nth) <= 5:
            raise ValueError(f"cron() day-of-week {value!r}: '#' takes one weekday and 1-5, e.g. 3#2")
        return f"{_ORDINALS[int(nth) - 1]} {WEEKDAYS[_weekday(day)]}", "*"
    if value.endswith("l"):
        if "," in value or "-" in value:
            raise ValueError(f"cron() day-of-week {value!r}: 'L' takes one weekday, e.g. 6L")
        return f"last {WEEKDAYS[_weekday(value[:-1])]}", "*"
    days: set[int] = set()
    for part in value.split(","):
        if "/" in part or "*" in part or not part:
            raise ValueError(f"cron() day-of-week {value!r}: use 1-7 or SUN-SAT with , and -")
        first, _, last = part.partition("-")
        low = _weekday(first)
        high = _weekday(last) if last else low
        current = low
        days.add(current)
        while current != high:  # a range may wrap past Saturday (FRI-MON)
            current = (current + 1) % 7
            days.add(current)
    return "*", ",".join(WEEKDAYS[day] for day in sorted(days))
