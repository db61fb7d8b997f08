"""Per-job policies (scheduld/policies.py) through a real fire against moto's ECS, with tasks
of the job still running there: overlap, starting deadline, catch-up and run history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from common import schedule as schedule_syntax
from common.config import SchedulerSettings
from common.models import JobStatus, Lease
from common.store.base import JobStore
from scheduld.firing import Firing
from scheduld.scheduler import Schedule
from scheduld.triggers import TriggerRegistry
from tests.scheduld.conftest import job, make_firing, running_tasks

FIRE = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("policy", "running_after", "started"),
    [
        (None, 2, 1),  # topUp, the seed's behaviour: back to taskCount
        ("topUp", 2, 1),
        ("skip", 1, 0),  # one still runs: start nothing
        ("allow", 3, 2),  # always taskCount more
        ("replace", 2, 2),  # the running one stopped, taskCount started
    ],
)
def test_overlap_policy_with_a_task_still_running(
    firing: Firing,
    sqlite_store: JobStore,
    ecs_client: Any,
    cluster: str,
    policy: str | None,
    running_after: int,
    started: int,
) -> None:
    fields: dict[str, Any] = {"taskCount": 2} | ({"overlapPolicy": policy} if policy else {})
    sqlite_store.create_job(job("overlap", **fields))
    firing("overlap", FIRE)
    first, survivor = (task["taskArn"] for task in running_tasks(ecs_client, cluster))
    ecs_client.stop_task(cluster=cluster, task=first, reason="finished")
    firing("overlap", FIRE + timedelta(minutes=1))
    assert len(running_tasks(ecs_client, cluster)) == running_after
    newest = sqlite_store.list_runs("overlap")[0]
    assert (newest.running, newest.started) == (1, started)
    if policy == "replace":
        assert newest.stopped == [survivor]
        (stopped,) = ecs_client.describe_tasks(cluster=cluster, tasks=[survivor])["tasks"]
        assert stopped["desiredStatus"] == "STOPPED"
        assert (
            newest.run_id in stopped["stoppedReason"] and "overlapPolicy replace" in stopped["stoppedReason"]
        )
    else:
        assert newest.stopped is None


def test_fire_later_than_its_starting_deadline_is_recorded_missed(
    firing: Firing, sqlite_store: JobStore, ecs_client: Any, cluster: str
) -> None:
    sqlite_store.create_job(job("deadline", startingDeadlineSeconds=60))
    late = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=120)
    firing("deadline", late)
    (run,) = sqlite_store.list_runs("deadline")
    assert (run.status, run.started) == ("missed", 0)
    assert run.error and "startingDeadlineSeconds (60)" in run.error
    assert running_tasks(ecs_client, cluster) == []
    assert sqlite_store.get_job("deadline").last_run == late  # not re-fired by a catch-up
    on_time = datetime.now(UTC) - timedelta(seconds=5)
    firing("deadline", on_time)
    assert sqlite_store.list_runs("deadline")[0].status == "launched"


def test_without_a_deadline_a_late_fire_launches_as_before(
    firing: Firing, sqlite_store: JobStore, ecs_client: Any, cluster: str
) -> None:
    sqlite_store.create_job(job("graceful"))
    firing("graceful", datetime.now(UTC) - timedelta(minutes=30))
    assert sqlite_store.list_runs("graceful")[0].status == "launched"


@pytest.mark.parametrize(("policy", "runs"), [(None, 1), ("coalesce", 1), ("all", 3)])
def test_catch_up_policy(
    sqlite_store: JobStore,
    launcher: Any,
    triggers: TriggerRegistry,
    lease: Lease,
    ecs_client: Any,
    cluster: str,
    policy: str | None,
    runs: int,
) -> None:
    schedule = Schedule(SchedulerSettings(), lambda job_id, scheduled: None)
    firing = make_firing(sqlite_store, launcher, triggers, lease, first_fire_after=schedule.first_fire_after)
    now = datetime.now(UTC).replace(microsecond=0)
    # every 20 minutes, down for 70: fires 50 and 30 minutes ago were missed, 10 minutes ago is due
    last = now - timedelta(minutes=70)
    fields: dict[str, Any] = {"schedule": f"{last.second} {last.minute % 20}-59/20", "overlapPolicy": "allow"}
    sqlite_store.create_job(job("outage", **fields | ({"catchUpPolicy": policy} if policy else {})))
    sqlite_store.update_status("outage", JobStatus(last_run=last))
    firing("outage", last + timedelta(minutes=60))
    requested = sqlite_store.pending_runs()  # 'all': the missed fires wait for the pending loop
    assert [run.scheduled_for for run in requested] == [
        last + timedelta(minutes=20 * i) for i in range(1, runs)
    ]
    for run in requested:
        assert firing.run_requested(run, lease)
    recorded = sqlite_store.list_runs("outage")
    assert [run.scheduled_for for run in recorded] == [
        last + timedelta(minutes=60 - 20 * i) for i in range(runs)
    ]  # newest first: one per missed fire with 'all', in order
    assert all(run.status == "launched" for run in recorded)
    assert len(running_tasks(ecs_client, cluster)) == runs
    assert recorded[0].coalesced_from == (None if policy == "all" else last + timedelta(minutes=20))
    assert [run.trigger for run in recorded] == [None] + ["schedule"] * (runs - 1)
    assert sqlite_store.get_job("outage").last_run == last + timedelta(minutes=60)


def test_run_history_limit_keeps_the_newest_runs(firing: Firing, sqlite_store: JobStore) -> None:
    sqlite_store.create_job(job("short-memory", runHistoryLimit=2, overlapPolicy="skip"))
    for minute in range(4):
        firing("short-memory", FIRE + timedelta(minutes=minute))
    assert [run.scheduled_for for run in sqlite_store.list_runs("short-memory")] == [
        FIRE + timedelta(minutes=3),
        FIRE + timedelta(minutes=2),
    ]


def test_a_job_deadline_longer_than_the_grace_reaches_the_schedule() -> None:
    fired: list[datetime] = []
    schedule = Schedule(SchedulerSettings(misfire_grace_seconds=60), lambda job_id, at: fired.append(at))
    now = datetime.now(UTC).replace(microsecond=0)
    missed = now - timedelta(minutes=10)
    hourly = job("patient", schedule=f"{missed.second} {missed.minute} *", startingDeadlineSeconds=3600)
    hourly.last_run = missed - timedelta(hours=1)
    scheduled = schedule.put(hourly, catch_up=True)
    assert scheduled is not None and scheduled.next_run == missed  # within its own deadline
    impatient = job("impatient", schedule=f"{missed.second} {missed.minute} *")
    impatient.last_run = missed - timedelta(hours=1)
    skipped = schedule.put(impatient, catch_up=True)
    assert skipped is not None and skipped.next_run is not None and skipped.next_run > now


def test_scheduld_fires_at_the_jittered_time_the_common_function_gives() -> None:
    schedule = Schedule(SchedulerSettings(), lambda job_id, at: None)
    jittered = job("spread", schedule="cron(0 * * * ? *)", jitterSeconds=1800)
    plain = job("plain-hourly", schedule="cron(0 * * * ? *)")
    expected = schedule_syntax.upcoming(
        schedule_syntax.build_trigger(jittered.schedule, jitter_seconds=1800, jitter_key="spread"), count=1
    )[0]
    first = schedule.put(jittered)
    assert first is not None and first.next_run == expected
    unjittered = schedule.put(plain)
    assert unjittered is not None and unjittered.next_run is not None
    assert unjittered.next_run.minute == 0 and unjittered.next_run.second == 0
    offset = expected - expected.replace(minute=0, second=0)
    assert timedelta(0) < offset < timedelta(seconds=1800)  # within the window after its hour
