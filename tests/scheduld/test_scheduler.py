"""The APScheduler wrapper: fire times, catch-up after downtime, pause, idempotent puts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from common.config import SchedulerSettings
from scheduld.scheduler import Schedule
from tests.scheduld.conftest import job


@pytest.fixture
def fired() -> list[tuple[str, datetime]]:
    return []


@pytest.fixture
def schedule(fired: list[tuple[str, datetime]]) -> Iterator[Schedule]:
    lock = threading.Lock()

    def on_fire(job_id: str, scheduled: datetime) -> None:
        with lock:
            fired.append((job_id, scheduled))

    instance = Schedule(SchedulerSettings(misfire_grace_seconds=3600, max_workers=4), on_fire)
    instance.start()
    yield instance
    instance.shutdown(wait=True)


def wait_for(condition: object, timeout: float = 5.0) -> None:
    deadline = datetime.now(UTC) + timedelta(seconds=timeout)
    while datetime.now(UTC) < deadline:
        if callable(condition) and condition():
            return
        threading.Event().wait(0.05)
    raise AssertionError("condition not met in time")


def test_callback_gets_the_scheduled_second(schedule: Schedule, fired: list[tuple[str, datetime]]) -> None:
    schedule.put(job("tick", schedule="*"))
    wait_for(lambda: len(fired) >= 2)
    for job_id, scheduled in fired:
        assert job_id == "tick"
        assert scheduled.microsecond == 0 and scheduled.tzinfo is not None
    assert fired[1][1] - fired[0][1] == timedelta(seconds=1)


def test_put_is_idempotent_and_reschedules_on_change(schedule: Schedule) -> None:
    assert schedule.put(job("a", schedule="0 0 0")) is not None
    first = schedule.next_fire_time("a")
    assert schedule.put(job("a", schedule="0 0 0", taskCount=5)) is None  # no timing change
    rescheduled = schedule.put(job("a", schedule="0 30 0"))
    assert rescheduled is not None and rescheduled.next_run == schedule.next_fire_time("a")
    assert schedule.next_fire_time("a") != first
    assert schedule.scheduled_ids() == {"a"}


def test_suspended_job_is_paused(schedule: Schedule, fired: list[tuple[str, datetime]]) -> None:
    schedule.put(job("s", schedule="*", suspended=True))
    assert schedule.next_fire_time("s") is None
    threading.Event().wait(1.5)
    assert fired == []
    schedule.put(job("s", schedule="*", suspended=False))
    assert schedule.next_fire_time("s") is not None


def test_remove(schedule: Schedule) -> None:
    schedule.put(job("r"))
    assert schedule.remove("r") is True
    assert schedule.remove("r") is False
    assert schedule.next_fire_time("r") is None and schedule.scheduled_ids() == set()


def test_timezone_and_window_are_applied(schedule: Schedule) -> None:
    start = datetime.now(UTC) + timedelta(days=3)
    schedule.put(job("w", schedule="0 0 9", timezone="Asia/Tokyo", scheduleStart=start.isoformat()))
    nxt = schedule.next_fire_time("w")
    assert nxt is not None and nxt >= start
    assert nxt.astimezone(UTC).hour == 0  # 09:00 Tokyo
    ended = datetime.now(UTC) - timedelta(days=1)
    schedule.put(job("e", schedule="0 0 9", scheduleEnd=ended.isoformat()))
    assert schedule.next_fire_time("e") is None


def test_catch_up_runs_a_missed_fire_once_within_grace(
    schedule: Schedule, fired: list[tuple[str, datetime]]
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    last_run = now - timedelta(minutes=90)  # the next hourly fire was missed 30 minutes ago
    hourly = f"{last_run.second} {last_run.minute} *"
    schedule.put(job("late", schedule=hourly, lastRun=last_run.isoformat()), catch_up=True)
    wait_for(lambda: fired)
    threading.Event().wait(0.5)
    assert fired == [("late", last_run + timedelta(hours=1))]  # once, for the missed time
    assert schedule.next_fire_time("late") == last_run + timedelta(hours=2)


def test_catch_up_never_refires_last_run(schedule: Schedule, fired: list[tuple[str, datetime]]) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    last_run = now - timedelta(seconds=1)
    daily = f"{last_run.second} {last_run.minute} {last_run.hour}"
    schedule.put(job("done", schedule=daily, lastRun=last_run.isoformat()), catch_up=True)
    nxt = schedule.next_fire_time("done")
    assert nxt is not None and nxt - last_run == timedelta(days=1)


def test_catch_up_beyond_grace_is_skipped(fired: list[tuple[str, datetime]]) -> None:
    short = Schedule(SchedulerSettings(misfire_grace_seconds=60), lambda j, s: fired.append((j, s)))
    short.start()
    try:
        now = datetime.now(UTC).replace(microsecond=0)
        last_run = now - timedelta(minutes=150)  # hourly fires missed 90 and 30 minutes ago
        hourly = f"{last_run.second} {last_run.minute} *"
        short.put(job("old", schedule=hourly, lastRun=last_run.isoformat()), catch_up=True)
        assert short.next_fire_time("old") == last_run + timedelta(hours=3)  # both skipped
        threading.Event().wait(0.3)
    finally:
        short.shutdown(wait=True)
    assert fired == []


def test_catch_up_runs_the_fire_within_grace_when_older_ones_are_beyond_it(
    schedule: Schedule, fired: list[tuple[str, datetime]]
) -> None:
    """Grace 1 h: of the fires missed 90 and 30 minutes ago, only the later one runs."""
    now = datetime.now(UTC).replace(microsecond=0)
    last_run = now - timedelta(minutes=150)
    hourly = f"{last_run.second} {last_run.minute} *"
    schedule.put(job("mixed", schedule=hourly, lastRun=last_run.isoformat()), catch_up=True)
    wait_for(lambda: fired)
    threading.Event().wait(0.3)
    assert fired == [("mixed", last_run + timedelta(hours=2))]
    assert schedule.next_fire_time("mixed") == last_run + timedelta(hours=3)


def test_catch_up_coalesces_several_missed_fires_into_one_run(
    schedule: Schedule, fired: list[tuple[str, datetime]]
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    last_run = now - timedelta(minutes=35)  # every-5-minutes fires missed: 7 of them
    every_five = f"{last_run.second} {last_run.minute % 5}-59/5"
    schedule.put(job("many", schedule=every_five, lastRun=last_run.isoformat()), catch_up=True)
    wait_for(lambda: fired)
    threading.Event().wait(0.3)
    assert fired == [("many", last_run + timedelta(minutes=35))]  # once, for the latest


def test_catch_up_never_refires_a_last_run_ahead_of_this_clock(schedule: Schedule) -> None:
    """lastRun written by a replica whose clock runs 3 s ahead: the next fire is after it."""
    ahead = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    schedule.put(job("skewed", schedule="*", lastRun=ahead.isoformat()), catch_up=True)
    assert schedule.next_fire_time("skewed") == ahead + timedelta(seconds=1)


def test_fires_due_counts_the_herd_of_each_second(
    schedule: Schedule, fired: list[tuple[str, datetime]]
) -> None:
    for n in range(7):
        schedule.put(job(f"herd{n}", schedule="*/2"))
    schedule.put(job("odd", schedule="1-59/2"))
    wait_for(lambda: len({at for _, at in fired}) >= 2 and len(fired) >= 8)
    seen = list(fired)
    threading.Event().wait(0.2)  # a second's fires are all handed over within microseconds
    for _, at in seen:
        assert schedule.fires_due(at) == (7 if at.second % 2 == 0 else 1)
