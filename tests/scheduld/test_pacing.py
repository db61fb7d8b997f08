"""Backfill and catch-up pacing (scheduld/pacing.py) against a real LaunchQuota on a fake
clock: one run per slot, none while the quota lacks room, manual runs never held back. The
processes pacing a real backfill are in tests/e2e/test_policies.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from common.config import ECSSettings
from common.models import Lease, Run, RunTrigger
from common.store.base import Store
from scheduld.executor import LaunchQuota, TaskLauncher
from scheduld.pacing import Pacer
from scheduld.triggers import TriggerRegistry
from tests.scheduld.conftest import job, make_firing, running_tasks


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


def test_a_backfill_run_that_loses_the_quota_to_a_scheduled_fire_waits_instead_of_throttled(
    sqlite_store: Store,
    ecs_client: Any,
    ecs_settings: ECSSettings,
    triggers: TriggerRegistry,
    lease: Lease,
    cluster: str,
) -> None:
    """The pacer saw room, then a scheduled fire took it before the launch (moto's ECS)."""
    clock = Clock()
    quota = LaunchQuota(1, clock=clock)
    launcher = TaskLauncher(ecs_client, ecs_settings, quota=quota)
    firing = make_firing(sqlite_store, launcher, triggers, lease, admit=Pacer(0, clock=clock).admit)
    sqlite_store.create_job(job("backfilled"))
    scheduled = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    (run,) = sqlite_store.request_runs(
        [
            Run(
                job_id="backfilled",
                scheduled_for=scheduled,
                replica="webapi",
                token=0,
                status="requested",
                trigger="backfill",
            )
        ]
    )
    assert quota.take(1) == 1  # the scheduled fire
    assert not firing.run_requested(run, lease)
    (waiting,) = sqlite_store.pending_runs()
    assert (waiting.status, waiting.run_id) == ("requested", run.run_id)
    assert not running_tasks(ecs_client, cluster)
    clock.now += 60
    assert firing.run_requested(waiting, lease)
    (launched,) = sqlite_store.list_runs("backfilled")
    assert (launched.status, launched.started) == ("launched", 1)
    assert len(running_tasks(ecs_client, cluster)) == 1
