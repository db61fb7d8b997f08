"""EventBridge Scheduler expressions, jitter and frequency warnings, through common/schedule.py.

Expected times are worked out by hand from EventBridge Scheduler's documentation (schedule
types; cron field rules; daylight saving: a local time skipped in spring is skipped, one
repeated in autumn runs once; a rate day is 24 hours) and the calendar: 2026-11-25 is a
Wednesday, 2027-03-14 and 2027-11-07 are New York's DST changes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from common.errors import InvalidJobError
from common.models import new_job, parse_create
from common.schedule import (
    ScheduleError,
    _one_second_a_minute,
    build_trigger,
    frequency_warnings,
    next_fire_time,
    resolve_wildcards,
    upcoming,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # a Wednesday


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


FIRES = [
    # (expression, timezone, after, first fire time)
    ("cron(0 10 * * ? *)", None, NOW, utc(2026, 11, 26, 10)),
    ("cron(15 12 * * ? *)", None, NOW, utc(2026, 11, 25, 12, 15)),
    ("cron(0 18 ? * MON-FRI *)", None, NOW, utc(2026, 11, 25, 18)),
    ("cron(0 8 1 * ? *)", None, NOW, utc(2026, 12, 1, 8)),
    ("cron(0/15 * * * ? *)", None, NOW, utc(2026, 11, 25, 12, 15)),
    ("cron(0/5 8-17 ? * MON-FRI *)", None, utc(2026, 11, 27, 18), utc(2026, 11, 30, 8)),
    ("cron(0 9 ? * 2#1 *)", None, NOW, utc(2026, 12, 7, 9)),  # first Monday of December
    ("cron(0 0 L * ? *)", None, NOW, utc(2026, 11, 30)),  # last day of the month
    ("cron(0 0 LW * ? *)", None, utc(2026, 12, 31, 12), utc(2027, 1, 29)),  # Jan 31 is a Sunday
    ("cron(0 0 1W * ? *)", None, utc(2027, 4, 15), utc(2027, 5, 3)),  # May 1 is a Saturday
    ("cron(0 0 13W * ? *)", None, utc(2027, 3, 1), utc(2027, 3, 12)),  # Saturday → Friday
    ("cron(0 0 14W * ? *)", None, utc(2027, 3, 1), utc(2027, 3, 15)),  # Sunday → Monday
    ("cron(0 0 ? * 6L *)", None, NOW, utc(2026, 11, 27)),  # last Friday
    ("cron(0 0 ? * L *)", None, NOW, utc(2026, 11, 28)),  # L alone: Saturday
    ("cron(0 0 ? * 1 *)", None, NOW, utc(2026, 11, 29)),  # 1 is Sunday
    ("cron(0 0 ? * FRI-MON *)", None, NOW, utc(2026, 11, 27)),  # a range wrapping the week
    ("cron(0 0 1 JAN ? *)", None, NOW, utc(2027, 1, 1)),
    ("cron(0 0 1 1 ? 2028)", None, NOW, utc(2028, 1, 1)),
    ("cron(0 9 * * ? *)", "America/New_York", NOW, utc(2026, 11, 25, 14)),  # EST
    ("cron(0 9 * * ? *)", "Asia/Kolkata", NOW, utc(2026, 11, 26, 3, 30)),
    # spring forward: 02:30 does not exist on 2027-03-14 in New York, so that day is skipped
    ("cron(30 2 * * ? *)", "America/New_York", utc(2027, 3, 13, 12), utc(2027, 3, 15, 6, 30)),
    ("rate(5 minutes)", None, NOW, utc(2026, 11, 25, 12, 5)),
    ("rate(1 minute)", None, NOW + timedelta(seconds=30), utc(2026, 11, 25, 12, 1)),
    ("rate(3 hours)", None, NOW, utc(2026, 11, 25, 15)),  # from 2000-01-01T00:00Z: 0, 3, ... 15
    # a day is 24 hours from 2000-01-01T00:00 New York time (05:00Z), whatever DST does
    ("rate(1 day)", "America/New_York", NOW, utc(2026, 11, 26, 5)),
    ("rate(1 day)", "America/New_York", utc(2027, 7, 1, 12), utc(2027, 7, 2, 5)),
    ("at(2026-12-24T18:00:00)", "Europe/Berlin", NOW, utc(2026, 12, 24, 17)),
    ("at(2026-12-24T18:00:00)", None, NOW, utc(2026, 12, 24, 18)),
    ("at(2026-11-01T00:00:00)", None, NOW, None),  # in the past: never
]


@pytest.mark.parametrize(("expression", "timezone", "after", "expected"), FIRES, ids=lambda v: str(v))
def test_first_fire_time(
    expression: str, timezone: str | None, after: datetime, expected: datetime | None
) -> None:
    assert next_fire_time(build_trigger(expression, timezone=timezone), after) == expected


def test_autumn_repeated_hour_runs_once() -> None:
    trigger = build_trigger("cron(30 1 * * ? *)", timezone="America/New_York")
    assert upcoming(trigger, count=2, after=utc(2027, 11, 6, 12)) == [
        utc(2027, 11, 7, 5, 30),  # 01:30 EDT; 01:30 EST an hour later does not fire again
        utc(2027, 11, 8, 6, 30),
    ]


def test_rate_counts_from_schedule_start() -> None:
    trigger = build_trigger("rate(2 hours)", start=utc(2026, 11, 25, 12, 30))
    assert upcoming(trigger, count=3, after=NOW) == [
        utc(2026, 11, 25, 12, 30),
        utc(2026, 11, 25, 14, 30),
        utc(2026, 11, 25, 16, 30),
    ]


def test_at_outside_the_window_never_fires() -> None:
    trigger = build_trigger("at(2026-12-24T18:00:00)", end=utc(2026, 12, 1))
    assert next_fire_time(trigger, NOW) is None


def test_expressions_are_stored_as_given() -> None:
    assert resolve_wildcards("cron(0 10 * * ? *)") == "cron(0 10 * * ? *)"


@pytest.mark.parametrize(
    ("expression", "says"),
    [
        ("cron(0 10 * * * *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 10 ? * ? *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 10 * *)", "it takes 6"),
        ("cron(0 0 ? * 2#6 *)", "'#' takes one weekday and 1-5"),
        ("cron(0 0 ? * 8 *)", "1-7 (1 is Sunday)"),
        ("cron(0 0 1 1 ? 2300)", "outside 1970-2199"),
        ("cron(0 25 * * ? *)", "hour"),
        ("cron(0 0 32W * ? *)", "1-31"),
        ("rate(0 minutes)", "at least 1"),
        ("rate(5 weeks)", "minutes, hours or days"),
        ("at(2026-13-01T00:00:00)", "not a valid date"),
        ("at(tomorrow)", "yyyy-mm-ddThh:mm:ss"),
    ],
)
def test_bad_expressions_say_why(expression: str, says: str) -> None:
    with pytest.raises(ScheduleError, match=says.replace("(", r"\(").replace(")", r"\)")):
        build_trigger(expression)


def test_jitter_is_stable_across_replicas_and_within_its_window() -> None:
    one = build_trigger("cron(0 * * * ? *)", jitter_seconds=600, jitter_key="nightly")
    other = build_trigger("cron(0 * * * ? *)", jitter_seconds=600, jitter_key="nightly")
    times = upcoming(one, count=24, after=NOW)
    assert times == upcoming(other, count=24, after=NOW)  # built apart, as two replicas do
    assert all(t.minute < 10 and t.microsecond == 0 for t in times)  # whole seconds in [0, 600)
    assert len({t.minute for t in times}) > 5, "offsets spread the fires"
    assert [(t.hour - 12) % 24 for t in times] == list(range(24))  # 12:00's fire is delayed past NOW
    another_job = upcoming(build_trigger("cron(0 * * * ? *)", jitter_seconds=600, jitter_key="b"), count=24)
    assert [t.minute for t in another_job] != [t.minute for t in times]


def test_jitter_wider_than_the_interval_keeps_every_fire_in_order() -> None:
    trigger = build_trigger("rate(1 minute)", jitter_seconds=3600, jitter_key="dense")
    times = upcoming(trigger, count=30, after=NOW)
    minutes = [(t - NOW).total_seconds() // 60 for t in times]
    assert minutes[0] in (0, 1)
    assert minutes == list(range(int(minutes[0]), int(minutes[0]) + 30))  # one a minute, in order
    assert any(t.second for t in times)


def test_a_fire_delayed_past_now_is_still_found() -> None:
    trigger = build_trigger("cron(0 12 * * ? *)", jitter_seconds=3000, jitter_key="noon")
    fire = next_fire_time(trigger, NOW)
    assert fire is not None and NOW < fire < NOW + timedelta(seconds=3000)
    following = next_fire_time(trigger, fire)
    assert following is not None and following > NOW + timedelta(days=1)


@pytest.mark.parametrize(
    ("expression", "warned"),
    [
        ("*/5 * * * *", "every 5 seconds"),  # a Unix line read as seconds first
        ("* *", "every 1 seconds"),
        ("0 */15", None),
        ("cron(* * * * ? *)", None),
        ("rate(1 minute)", None),
    ],
)
def test_frequency_warnings(expression: str, warned: str | None) -> None:
    warnings = frequency_warnings(expression)
    if warned is None:
        assert warnings == []
    else:
        assert len(warnings) == 1 and warned in warnings[0]


def test_schedule_end_in_the_past_is_rejected_by_name() -> None:
    body = {"taskDefinition": "t", "schedule": "0 0", "scheduleEnd": "2020-01-01T00:00:00Z"}
    with pytest.raises(InvalidJobError) as caught:
        new_job(parse_create(body))
    assert "scheduleEnd" in caught.value.errors


@pytest.mark.parametrize("value", [-1, 86401, "5"])
def test_jitter_seconds_is_validated_by_name(value: object) -> None:
    with pytest.raises(InvalidJobError) as caught:
        parse_create({"taskDefinition": "t", "schedule": "0 0", "jitterSeconds": value})
    assert "jitterSeconds" in caught.value.errors


@pytest.mark.parametrize(
    "expression",
    [
        "0 0 0",
        "30 */1",
        "0-0 * * * * * * *",
        "7 30 1 * * * 3",
        "cron(* * * * ? *)",
        "cron(0 12 ? * MON-FRI *)",
    ],
)
@pytest.mark.parametrize("timezone", [None, "Europe/Paris", "America/St_Johns", "Asia/Kathmandu"])
def test_frequency_warnings_shortcut_agrees_with_the_search(expression: str, timezone: str | None) -> None:
    """Schedules at one second of the minute skip the search of their next fires: the fires
    searched (across DST changes in zones with odd offsets) are whole minutes apart."""
    trigger = build_trigger(expression, timezone=timezone)
    assert _one_second_a_minute(trigger)
    times = upcoming(trigger, count=12, after=datetime(2026, 3, 29, 0, 0, 1, tzinfo=UTC))
    times += upcoming(trigger, count=12, after=datetime(2026, 10, 25, 0, 0, 1, tzinfo=UTC))
    assert all((later - earlier).total_seconds() % 60 == 0 for earlier, later in pairwise(times))
    assert frequency_warnings(expression, timezone=timezone) == []


@pytest.mark.parametrize("expression", ["*/5", "0,30", "* *", "rate(1 minute)"])
def test_frequency_warnings_shortcut_leaves_other_schedules_to_the_search(expression: str) -> None:
    assert not _one_second_a_minute(build_trigger(expression))
