"""The 8-field schedule syntax, including property-based tests with hypothesis."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger
from hypothesis import given, settings
from hypothesis import strategies as st

from common.schedule import (
    FIELD_NAMES,
    SEARCH_STEPS,
    SYNTAX_PATTERN,
    ScheduleError,
    build_trigger,
    check_fires,
    cron_fields,
    frequency_warnings,
    next_fire_time,
    resolve_wildcards,
    search_next_fire,
    split_fields,
    validate_schedule,
)

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


def fires(expression: str, after: datetime = NOW, **kwargs: object) -> datetime | None:
    return next_fire_time(build_trigger(expression, **kwargs), after)  # type: ignore[arg-type]


def test_right_fields_may_be_omitted() -> None:
    assert cron_fields("0 */15") == {"second": "0", "minute": "*/15"}
    assert fires("0 */15") == datetime(2026, 11, 25, 12, 15, tzinfo=UTC)


def test_every_september_first() -> None:
    assert fires("0 0 0 * * 1 9") == datetime(2027, 9, 1, tzinfo=UTC)


def test_underscore_stands_for_space() -> None:
    assert cron_fields("0 0 0 * * 2nd_fri")["day"] == "2nd fri"
    assert fires("0 0 0 * * 2nd_fri") == datetime(2026, 12, 11, tzinfo=UTC)
    assert fires("0 0 0 * * last_mon") == datetime(2026, 11, 30, tzinfo=UTC)


def test_timezone_shifts_fire_time() -> None:
    assert fires("0 0 4", timezone="America/New_York") == datetime(2026, 11, 26, 9, tzinfo=UTC)


def test_start_and_end_bound_the_schedule() -> None:
    later = datetime(2027, 1, 1, tzinfo=UTC)
    assert fires("0 0 0", start=later) == later
    assert fires("0 0 0", end=datetime(2026, 11, 25, 13, tzinfo=UTC)) is None


def test_wildcards_resolve_in_range_and_only_in_time_fields() -> None:
    rng = random.Random(7)
    for _ in range(200):
        second, minute, hour = (int(v) for v in resolve_wildcards("? ? ?", rng).split())
        assert 0 <= second <= 59 and 0 <= minute <= 59 and 0 <= hour <= 23
    assert resolve_wildcards("? */5") != "? */5"
    with pytest.raises(ScheduleError, match="day_of_week"):
        build_trigger(resolve_wildcards("0 0 0 ?"))


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("", "at least"),
        ("   ", "at least"),
        ("1 2 3 4 5 6 7 8 9", "at most 8"),
        ("60", "maximum"),
        ("0 0 24", "maximum"),
        ("0 0 0 * 54", "maximum"),
        ("0 0 0 funday", "weekday name"),
        ("0 ?/5", "whole fields"),
        ("x" * 300, "at most 256"),
        ("0 0 $", "only letters, digits"),
        ("0 0 \u00e9", "only letters, digits"),
        ("0 0;1", "only letters, digits"),
    ],
)
def test_invalid_schedules_say_why(expression: str, reason: str) -> None:
    with pytest.raises(ScheduleError, match=reason):
        validate_schedule(expression)


def test_fields_may_be_separated_by_any_white_space() -> None:
    assert split_fields("0\t*/5\u2003 1-3\n") == ["0", "*/5", "1-3"]


def test_schedule_that_never_fires_is_rejected() -> None:
    with pytest.raises(ScheduleError, match="never fires"):
        validate_schedule("0 0 0 * * 30 2")
    with pytest.raises(ScheduleError, match="never fires"):
        validate_schedule("0 0 0 * * * * 2001")


# --- properties -----------------------------------------------------------------------------

_RANGES = {
    "second": (0, 59),
    "minute": (0, 59),
    "hour": (0, 23),
    "day_of_week": (0, 6),
    "week": (1, 53),
    "day": (1, 31),
    "month": (1, 12),
    "year": (2026, 2040),
}


@st.composite
def field_expression(draw: st.DrawFn, name: str) -> str:
    low, high = _RANGES[name]
    a = draw(st.integers(low, high))
    b = draw(st.integers(a, high))
    options = ["*", str(a), f"{a}-{b}", f"*/{draw(st.integers(1, high - low + 1))}", f"{a},{b}"]
    if name in {"second", "minute", "hour"}:
        options.append("?")
    if name == "day":
        options += ["last", f"last_{draw(st.sampled_from(['mon', 'fri']))}", "2nd_fri"]
    if name == "day_of_week":
        options += ["mon-fri", "sun"]
    return draw(st.sampled_from(options))


@st.composite
def schedules(draw: st.DrawFn) -> str:
    length = draw(st.integers(1, len(FIELD_NAMES)))
    return " ".join(draw(field_expression(name)) for name in FIELD_NAMES[:length])


@settings(max_examples=150, deadline=None)
@given(schedules())
def test_accepted_schedules_build_triggers_and_round_trip(expression: str) -> None:
    try:
        stored = validate_schedule(expression)
    except ScheduleError:
        return  # e.g. a day/week/month combination that never occurs
    assert "?" not in stored
    assert validate_schedule(stored) == stored  # resolving is stable once concrete
    trigger = build_trigger(stored)
    again = build_trigger(" ".join(stored.split()))
    assert str(again) == str(trigger)
    assert next_fire_time(trigger) is not None
    # scheduld sees exactly the fields webapi validated
    assert list(cron_fields(stored)) == list(FIELD_NAMES[: len(stored.split())])


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_text_is_accepted_or_rejected_with_schedule_error(text: str) -> None:
    try:
        stored = validate_schedule(text)
    except ScheduleError:
        return
    assert next_fire_time(build_trigger(stored)) is not None


@settings(max_examples=50, deadline=None)
@given(schedules().filter(lambda s: "?" not in s))
def test_wildcard_free_schedules_are_stored_verbatim(expression: str) -> None:
    try:
        assert validate_schedule(expression) == expression
    except ScheduleError:
        pass


@settings(max_examples=150, deadline=None)
@given(schedules().filter(lambda s: "?" not in s), st.integers(0, 3 * 365 * 86400))
def test_shared_field_triggers_fire_exactly_like_apschedulers_own(expression: str, offset: int) -> None:
    """build_trigger shares compiled fields between triggers (a cold-start optimisation): its
    triggers must fire at the very times a plain CronTrigger of the same fields does, even
    after other triggers have reused those fields."""
    try:
        shared = build_trigger(expression, timezone="Europe/Paris")
    except ScheduleError:
        return
    build_trigger(expression, timezone="UTC")  # the same compiled fields, used elsewhere
    plain = CronTrigger(timezone=ZoneInfo("Europe/Paris"), **cron_fields(expression))
    moment = NOW + timedelta(seconds=offset)
    for _ in range(5):
        expected = plain.get_next_fire_time(None, moment)
        assert shared.get_next_fire_time(None, moment) == expected
        if expected is None:
            break
        moment = expected + timedelta(seconds=1)


# --- bounded cost ------------------------------------------------------------------------

NEVER_OR_TOO_SPARSE = ["0 0 0 * 53 * 2", "0 0 0 fri 53 13", "0 0 0 * * 31 2", "0 0 0 mon 53 29 2"]
SPARSE_BUT_FINE = {
    "0 0 0 mon * 29 2": datetime(2044, 2, 29, tzinfo=UTC),  # Feb 29 on a Monday
    "0 0 0 * * 5th_fri 2": datetime(2036, 2, 29, tzinfo=UTC),
    "0 0 0 * 1 * 12": datetime(2029, 12, 31, tzinfo=UTC),
    "0 0 0 * * 29 2 2096": datetime(2096, 2, 29, tzinfo=UTC),
}


@pytest.mark.parametrize("expression", NEVER_OR_TOO_SPARSE)
def test_hostile_schedules_stop_within_the_step_budget(expression: str) -> None:
    with pytest.raises(ScheduleError, match="too sparse or never fires"):
        check_fires(build_trigger(expression), after=NOW)
    # unbounded, APScheduler walks on to year 9999 (hundreds of thousands of steps)
    with pytest.raises(ScheduleError, match=f"within {SEARCH_STEPS * 20} search steps"):
        search_next_fire(build_trigger(expression), None, NOW, steps=SEARCH_STEPS * 20)


@pytest.mark.parametrize(("expression", "expected"), SPARSE_BUT_FINE.items())
def test_sparse_schedules_are_still_found(expression: str, expected: datetime) -> None:
    assert check_fires(build_trigger(expression), after=NOW) == expected
    assert fires(expression) == expected  # the scheduler's own (larger) budget agrees


def test_scheduler_trigger_treats_an_exhausted_search_as_no_more_fires() -> None:
    assert build_trigger("0 0 0 * 53 * 2").get_next_fire_time(None, NOW) is None


def test_minimum_interval_between_fires() -> None:
    assert check_fires(build_trigger("*/2"), after=NOW, min_interval=2)
    with pytest.raises(ScheduleError, match="apart"):
        check_fires(build_trigger("*/2"), after=NOW, min_interval=3)
    with pytest.raises(ScheduleError, match="apart"):
        validate_schedule("0,1 * *", min_interval=5)


def test_a_kept_validation_ends_at_the_next_fire() -> None:
    """validate_schedule keeps its answer until the next fire it found: after that fire the
    schedule is searched again (a one-off in 2030 stops validating once it fired)."""
    once = "0 0 0 1 * 1 1 2030"
    assert validate_schedule(once, after=datetime(2029, 6, 1, tzinfo=UTC)) == once
    assert validate_schedule(once, after=datetime(2029, 12, 31, 23, 59, 59, tzinfo=UTC)) == once
    with pytest.raises(ScheduleError, match="never fires"):
        validate_schedule(once, after=datetime(2030, 1, 1, tzinfo=UTC))
    # nor does it hold before the time it was computed at
    assert validate_schedule(once, after=datetime(2029, 6, 1, tzinfo=UTC)) == once


def test_kept_frequency_warnings_end_at_the_next_fire() -> None:
    every_second_in_2030 = "* * * * * * * 2030"
    warned = frequency_warnings(every_second_in_2030, after=datetime(2029, 6, 1, tzinfo=UTC))
    assert warned and "every 1 seconds" in warned[0]
    assert frequency_warnings(every_second_in_2030, after=datetime(2029, 7, 1, tzinfo=UTC)) == warned
    assert frequency_warnings(every_second_in_2030, after=datetime(2031, 1, 1, tzinfo=UTC)) == []
    # whole minutes apart whatever the time: no search, no warning
    assert frequency_warnings("5 * *", after=datetime(2031, 1, 1, tzinfo=UTC)) == []


@pytest.mark.parametrize(
    "expression",
    ["0", "0 */15", "? ? ? mon-fri * * jan,jul 2027", "0 0 0 * * 2nd_fri", "  0  0 ", "0 0 0 * * last"],
)
def test_schema_pattern_accepts_what_the_parser_accepts(expression: str) -> None:
    validate_schedule(expression)
    assert re.fullmatch(SYNTAX_PATTERN, expression)


@pytest.mark.parametrize("expression", ["", "0\x000", "０", "0 0 0 0 0 0 0 0 0", "0;0", "0 0 0 * * 2nd fri#"])
def test_what_the_schema_pattern_rejects_the_parser_rejects(expression: str) -> None:
    assert not re.fullmatch(SYNTAX_PATTERN, expression)
    with pytest.raises(ScheduleError):
        validate_schedule(expression)
