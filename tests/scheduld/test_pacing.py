"""Backfill and catch-up pacing (scheduld/pacing.py) against a real LaunchQuota on a fake
clock: one run per slot, none while the quota lacks room, manual runs never held back. The
processes pacing a real backfill are in tests/e2e/test_policies.py."""

from __future__ import annotations

from datetime import UTC, datetime

from common.models import Run, RunTrigger
from scheduld.executor import LaunchQuota
from scheduld.pacing import Pacer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _run(trigger: RunTrigger | None) -> Run:
    return Run(
        job_id="j", scheduled_for=datetime.now(UTC), replica="r", token=1, status="requested", trigger=trigger
    )


def test_one_paced_run_per_slot_and_manual_runs_are_not_held() -> None:
    clock = Clock()
    pacer = Pacer(2.0, clock=clock)
    assert pacer.admit(_run("backfill"), 1)
    assert not pacer.admit(_run("backfill"), 1)
    assert not pacer.admit(_run("schedule"), 1)  # a caught-up fire shares the pace
    assert pacer.admit(_run("manual"), 1)
    assert pacer.retry_in() == 0.5
    clock.now += 0.5
    assert pacer.admit(_run("schedule"), 1)
    assert not pacer.admit(_run("backfill"), 1)


def test_paced_runs_wait_for_room_in_the_quota_instead_of_being_throttled() -> None:
    clock = Clock()
    quota = LaunchQuota(4, clock=clock)
    pacer = Pacer(0, room_for=quota.has_room, clock=clock)  # unpaced: only the quota holds runs
    assert quota.take(3) == 3  # scheduled fires used 3 of 4
    assert pacer.admit(_run("backfill"), 1)
    assert quota.take(1) == 1  # the admitted run's launch
    assert not pacer.admit(_run("backfill"), 1)
    assert pacer.retry_in() == 1.0
    assert quota.take(1) == 0  # nothing taken by asking
    clock.now += 60
    assert pacer.admit(_run("backfill"), 2)
    assert Pacer(0, room_for=LaunchQuota(4, clock=clock).has_room, clock=clock).admit(_run("backfill"), 9)
