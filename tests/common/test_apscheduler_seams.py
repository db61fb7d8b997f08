"""The contract of common/apscheduler_seams.py with APScheduler 3's internals: each test drives
a real BackgroundScheduler or CronTrigger through one numbered seam of that module, so an
upgrade that breaks a seam fails here, by name, instead of in production."""

from __future__ import annotations

import inspect
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import apscheduler
import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger

from common.apscheduler_seams import (
    CHECKED,
    DayExpression,
    ExtendedCronTrigger,
    FireTimeExecutor,
    SearchBudgetExceeded,
    SharedFieldsCronTrigger,
    current_run_time,
    metered_next_fire,
    presigned,
)


def test_installed_apscheduler_is_in_the_checked_range() -> None:
    version = tuple(int(part) for part in apscheduler.__version__.split(".")[:2])
    low, high = CHECKED
    assert low <= version < high, (
        f"APScheduler {apscheduler.__version__} is outside the range the seams were checked "
        f"against ({CHECKED}): re-run these tests' reasoning against its source, then widen CHECKED"
    )


@pytest.fixture
def executor() -> FireTimeExecutor:
    return FireTimeExecutor()


@pytest.fixture
def scheduler(executor: FireTimeExecutor) -> Iterator[BackgroundScheduler]:
    """Jobs in these tests use interval triggers: a one-off (date) job is removed by the
    scheduler thread after its run, which races with shutdown in APScheduler itself."""
    instance = BackgroundScheduler(executors={"default": executor}, timezone=UTC)
    instance.start()
    yield instance
    instance.shutdown(wait=True)


def test_seam_1_executor_hands_each_run_its_scheduled_time_and_counts_the_herd(
    scheduler: BackgroundScheduler, executor: FireTimeExecutor
) -> None:
    at = (datetime.now(UTC) + timedelta(seconds=0.5)).replace(microsecond=0) + timedelta(seconds=1)
    seen: list[datetime | None] = []
    done = threading.Event()

    def job() -> None:
        seen.append(current_run_time())
        if len(seen) == 3:
            done.set()

    for n in range(3):
        scheduler.add_job(job, "interval", hours=1, next_run_time=at, id=f"j{n}")
    assert done.wait(5), "APScheduler never ran jobs through FireTimeExecutor._do_submit_job"
    assert seen == [at, at, at]
    assert executor.submitted(at) == 3


def test_seam_1_executor_runs_jobs_on_the_scheduler_thread_and_again_at_their_next_fire(
    scheduler: BackgroundScheduler,
) -> None:
    """Run at once, a job's instance count is back to zero before its next fire: APScheduler's
    ``max_instances`` never skips it."""
    runs: list[tuple[threading.Thread, datetime | None]] = []

    def job() -> None:
        runs.append((threading.current_thread(), current_run_time()))

    first = datetime.now(UTC) + timedelta(milliseconds=100)
    scheduler.add_job(job, "interval", seconds=0.3, next_run_time=first, id="again", max_instances=1)
    deadline = time.monotonic() + 5
    while len(runs) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(runs) >= 3, "the job's later fires were skipped"
    assert {thread.name for thread, _ in runs} == {"APScheduler"}
    times = [at for _, at in runs]
    assert times[:2] == [first, first + timedelta(seconds=0.3)]
    assert current_run_time() is None


def test_seam_1_executor_reports_outcomes_through_apscheduler_events(scheduler: BackgroundScheduler) -> None:
    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED

    events: list[int] = []
    scheduler.add_listener(lambda event: events.append(event.code), EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)

    def boom() -> None:
        raise RuntimeError("x")

    now = datetime.now(UTC) + timedelta(milliseconds=200)
    scheduler.add_job(lambda: None, "interval", hours=1, next_run_time=now, id="ok")
    scheduler.add_job(boom, "interval", hours=1, next_run_time=now, id="bad")
    deadline = time.monotonic() + 5
    while len(events) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sorted(events) == sorted([EVENT_JOB_EXECUTED, EVENT_JOB_ERROR])


def test_seam_2_apscheduler_checks_callables_through_their_signature_attribute() -> None:
    calls: list[str] = []
    fire_job = presigned(calls.append)
    assert inspect.signature(fire_job) is fire_job.__signature__  # type: ignore[attr-defined]
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.add_job(fire_job, DateTrigger(datetime.now(UTC)), args=["job"], id="ok")
    # APScheduler must still check arguments against the (precomputed) signature
    with pytest.raises(ValueError, match="arguments"):
        scheduler.add_job(fire_job, DateTrigger(datetime.now(UTC)), args=["a", "b"], id="bad")
    fire_job("direct")
    assert calls == ["direct"]


def test_seam_3_shared_fields_trigger_fires_like_a_cron_trigger_and_shares_fields() -> None:
    fields = {"second": "0", "minute": "*/5", "hour": "1-3", "day_of_week": "mon-fri"}
    shared = SharedFieldsCronTrigger(timezone=UTC, **fields)
    again = SharedFieldsCronTrigger(timezone=UTC, **fields)
    plain = CronTrigger(timezone=UTC, **fields)
    assert [str(f) for f in shared.fields] == [str(f) for f in plain.fields]
    assert all(a is b for a, b in zip(shared.fields, again.fields, strict=True))
    # so are their metered twins' fields (one per compiled field, not eight per trigger)
    assert all(a is b for a, b in zip(shared.metered().fields, again.metered().fields, strict=True))
    assert shared.metered() is shared.metered() and shared.metered() is not again.metered()
    now = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)
    for _ in range(5):
        expected = plain.get_next_fire_time(None, now)
        assert shared.get_next_fire_time(None, now) == expected
        now = expected + timedelta(seconds=1)


@pytest.mark.parametrize("trigger_class", [CronTrigger, SharedFieldsCronTrigger])
def test_seam_4_metered_search_finds_what_apscheduler_finds_and_stops_at_its_budget(
    trigger_class: type[CronTrigger],
) -> None:
    fields = {"second": "0", "minute": "0", "hour": "0", "day": "29", "month": "2"}
    trigger = trigger_class(timezone=UTC, **fields)
    now = datetime(2026, 11, 30, tzinfo=UTC)
    expected = CronTrigger(timezone=UTC, **fields).get_next_fire_time(None, now)
    assert metered_next_fire(trigger, None, now, steps=1000) == expected == datetime(2028, 2, 29, tzinfo=UTC)
    with pytest.raises(SearchBudgetExceeded, match="within 3 search steps"):
        metered_next_fire(trigger, None, now, steps=3)
    # the budget is this search's alone: a search after a refused one has its full budget
    assert metered_next_fire(trigger, None, now, steps=1000) == expected


class _Fifteenth(DayExpression):
    """``15x``: the 15th of each month (a day-of-month expression APScheduler lacks)."""

    value_re = re.compile(r"(?P<day>\d{1,2})x$")

    def __init__(self, day: str) -> None:
        super().__init__()
        self.day = int(day)

    def next_day(self, year: int, month: int, from_day: int) -> int | None:
        return self.day if self.day >= from_day else None

    def __str__(self) -> str:
        return f"{self.day}x"


class _WithFifteenth(ExtendedCronTrigger):
    DAY_EXPRESSIONS = (_Fifteenth,)


def test_seam_5_an_extra_day_expression_is_compiled_and_searched() -> None:
    trigger = _WithFifteenth(timezone=UTC, second="0", minute="0", hour="12", day="15x")
    now = datetime(2026, 11, 30, tzinfo=UTC)
    assert trigger.get_next_fire_time(None, now) == datetime(2026, 12, 15, 12, tzinfo=UTC)
    assert str(trigger.fields[CronTrigger.FIELD_NAMES.index("day")]) == "15x"
    with pytest.raises(ValueError):
        CronTrigger(timezone=UTC, day="15x")  # APScheduler itself does not know it


def test_seam_6_fields_accept_and_refused_field() -> None:
    trigger = _WithFifteenth(timezone=UTC, second="0", minute="30", hour="12", day="15x")
    assert trigger.fields_accept(datetime(2026, 12, 15, 12, 30))
    assert not trigger.fields_accept(datetime(2026, 12, 15, 12, 31))
    assert not trigger.fields_accept(datetime(2026, 12, 16, 12, 30))
    assert _WithFifteenth.refused_field({"minute": "30", "hour": "25", "day": "15x"}) == "hour"
    assert _WithFifteenth.refused_field({"minute": "30", "day": "15x"}) is None


def test_bounded_trigger_remembers_only_answers_that_do_not_depend_on_now() -> None:
    """A herd asks one shared trigger for the fire after the same previous fire, at slightly
    different moments: each answer must be what CronTrigger itself gives at that moment."""
    from common.schedule import BoundedCronTrigger

    fields = {"second": "*/7", "minute": "*/3", "hour": "0-20/4", "timezone": "Europe/Paris"}
    bounded = BoundedCronTrigger(**fields)
    plain = CronTrigger(**fields)
    previous = datetime(2026, 3, 29, 0, 0, 0, tzinfo=UTC)  # around a DST change in Paris
    moments = [previous - timedelta(hours=3), previous, previous + timedelta(microseconds=1)]
    moments += [previous + timedelta(hours=h) for h in (1, 2, 5, 30)]
    for _ in range(3):
        for now in moments + moments[::-1]:
            assert bounded.get_next_fire_time(previous, now) == plain.get_next_fire_time(previous, now)
            assert bounded.get_next_fire_time(None, now) == plain.get_next_fire_time(None, now)
        previous = plain.get_next_fire_time(previous, previous)
