"""A fire, end to end against moto: trigger depth → running count → RunTask → status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from common.config import SchedulerSettings
from common.models import Job, JobStatus, Lease, Run
from common.store.base import Store
from scheduld.firing import Firing
from scheduld.scheduler import Schedule
from scheduld.triggers import TriggerRegistry
from tests.scheduld.conftest import job, make_firing, running_tasks

FIRE = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
def queue(sqs_client: Any, unique_name: str) -> tuple[str, str]:
    name = f"{unique_name}-work"
    return name, sqs_client.create_queue(QueueName=name)["QueueUrl"]


def fill(sqs_client: Any, url: str, count: int) -> None:
    for start in range(0, count, 10):
        entries = [{"Id": str(i), "MessageBody": "m"} for i in range(start, min(count, start + 10))]
        sqs_client.send_message_batch(QueueUrl=url, Entries=entries)


def test_fire_launches_expected_and_records_status(
    firing: Firing, sqlite_store: Store, ecs_client: Any, cluster: str
) -> None:
    sqlite_store.create_job(job("plain", taskCount=3, maxCount=2))
    firing("plain", FIRE)
    assert len(running_tasks(ecs_client, cluster)) == 2  # min(taskCount, maxCount)
    stored = sqlite_store.get_job("plain")
    assert stored.last_run == FIRE
    assert {t.task_id for t in stored.last_run_tasks or []} == {
        t["taskArn"] for t in running_tasks(ecs_client, cluster)
    }
    assert stored.last_run_failures is None


def test_second_fire_while_tasks_run_starts_none(
    firing: Firing, sqlite_store: Store, ecs_client: Any, cluster: str
) -> None:
    sqlite_store.create_job(job("busy", taskCount=2))
    firing("busy", FIRE)
    firing("busy", FIRE + timedelta(minutes=1))
    assert len(running_tasks(ecs_client, cluster)) == 2
    assert sqlite_store.get_job("busy").last_run_tasks == []
    one = running_tasks(ecs_client, cluster)[0]["taskArn"]
    ecs_client.stop_task(cluster=cluster, task=one, reason="finished")
    firing("busy", FIRE + timedelta(minutes=2))
    assert len(running_tasks(ecs_client, cluster)) == 2  # only the difference was started
    assert len(sqlite_store.get_job("busy").last_run_tasks or []) == 1


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"suspended": True}, "suspended"),
        ({"scheduleEnd": "2026-11-25T11:00:00Z"}, "ended"),
        ({"scheduleStart": "2026-11-25T13:00:00Z"}, "not started"),
    ],
)
def test_suspended_or_out_of_window_jobs_never_fire(
    firing: Firing, sqlite_store: Store, ecs_client: Any, cluster: str, fields: dict[str, Any], reason: str
) -> None:
    sqlite_store.create_job(job("quiet", **fields))
    firing("quiet", FIRE)
    assert running_tasks(ecs_client, cluster) == [], reason
    assert sqlite_store.get_job("quiet").last_run is None


def test_deleted_job_is_dropped_not_fired(
    sqlite_store: Store,
    launcher: Any,
    triggers: TriggerRegistry,
    ecs_client: Any,
    cluster: str,
    lease: Lease,
) -> None:
    dropped: list[str] = []
    firing = make_firing(sqlite_store, launcher, triggers, lease, on_missing=dropped.append)
    firing("gone", FIRE)
    assert dropped == ["gone"] and running_tasks(ecs_client, cluster) == []


@pytest.mark.parametrize(
    ("depth", "task_count", "per_task", "max_count", "expected"),
    [
        (0, 1, 5, None, 0),  # empty queue: nothing
        (1, 1, 5, None, 1),
        (1, 3, 5, None, 3),  # at least taskCount
        (6, 1, 5, None, 2),  # messagesPerTask + 1 → 2
        (6, 1, None, None, 1),  # without messagesPerTask: taskCount
        (120, 1, 1, None, 50),  # huge: capped at 50
        (120, 1, 1, 7, 7),  # and by maxCount
    ],
)
def test_sqs_trigger_scales_with_depth(
    firing: Firing,
    sqlite_store: Store,
    sqs_client: Any,
    queue: tuple[str, str],
    ecs_client: Any,
    cluster: str,
    depth: int,
    task_count: int,
    per_task: int | None,
    max_count: int | None,
    expected: int,
) -> None:
    name, url = queue
    fill(sqs_client, url, depth)
    trigger: dict[str, Any] = {"type": "sqs", "queueName": name}
    if per_task:
        trigger["messagesPerTask"] = per_task
    fields: dict[str, Any] = {"taskCount": task_count, "trigger": trigger}
    if max_count:
        fields["maxCount"] = max_count
    sqlite_store.create_job(job("consumer", **fields))
    firing("consumer", FIRE)
    assert len(running_tasks(ecs_client, cluster)) == expected
    assert sqlite_store.get_job("consumer").last_run == FIRE


def test_missing_trigger_queue_is_recorded_not_raised(firing: Firing, sqlite_store: Store) -> None:
    sqlite_store.create_job(job("lost", trigger={"type": "sqs", "queueName": "no-such-queue"}))
    firing("lost", FIRE)
    stored = sqlite_store.get_job("lost")
    assert stored.last_run == FIRE and stored.last_run_tasks == []
    assert stored.last_run_failures and stored.last_run_failures[0].reason == "TriggerError"


def test_a_fire_is_claimed_once(firing: Firing, sqlite_store: Store, ecs_client: Any, cluster: str) -> None:
    sqlite_store.create_job(job("once", taskCount=1))
    firing("once", FIRE)
    for task in running_tasks(ecs_client, cluster):  # tasks ended: a second launch would happen
        ecs_client.stop_task(cluster=cluster, task=task["taskArn"], reason="done")
    firing("once", FIRE)  # the same fire again (a retry, another replica): already claimed
    assert running_tasks(ecs_client, cluster) == []
    (run,) = sqlite_store.list_runs("once")
    assert (run.status, run.expected, run.running, run.started) == ("launched", 1, 0, 1)
    assert run.replica == "test-replica" and len(run.tasks) == 1


def test_no_lease_no_fire(
    sqlite_store: Store,
    launcher: Any,
    triggers: TriggerRegistry,
    ecs_client: Any,
    cluster: str,
    lease: Lease,
) -> None:
    sqlite_store.create_job(job("leaderless"))
    make_firing(sqlite_store, launcher, triggers, lease, lease=lambda: None)("leaderless", FIRE)
    assert running_tasks(ecs_client, cluster) == [] and sqlite_store.list_runs("leaderless") == []


def test_runs_record_skips_and_failures(firing: Firing, sqlite_store: Store) -> None:
    sqlite_store.create_job(job("busy2", taskCount=1))
    firing("busy2", FIRE)
    firing("busy2", FIRE + timedelta(seconds=1))  # the first task still runs
    sqlite_store.create_job(
        Job.model_validate({"id": "broken", "taskDefinition": "no-such-task", "schedule": "0"})
    )
    firing("broken", FIRE)
    statuses = [run.status for run in sqlite_store.list_runs("busy2")]
    assert statuses == ["skipped", "launched"]
    (failed,) = sqlite_store.list_runs("broken")
    assert failed.status == "failed" and failed.failures and failed.error


def test_coalesced_from_names_missed_fires_within_grace_only(
    sqlite_store: Store, launcher: Any, triggers: TriggerRegistry, lease: Lease
) -> None:
    schedule = Schedule(SchedulerSettings(), lambda job_id, scheduled: None)
    firing = make_firing(
        sqlite_store,
        launcher,
        triggers,
        lease,
        first_fire_after=schedule.first_fire_after,
        settings=SchedulerSettings(misfire_grace_seconds=3600),
    )
    now = datetime.now(UTC).replace(microsecond=0)
    # every 20 minutes, down for 70: fires 50, 30 and 10 minutes ago collapse into the last
    recent = now - timedelta(minutes=70)
    sqlite_store.create_job(job("recent", schedule=f"{recent.second} {recent.minute % 20}-59/20"))
    sqlite_store.update_status("recent", JobStatus(last_run=recent))
    firing("recent", recent + timedelta(minutes=60))
    (run,) = sqlite_store.list_runs("recent")
    assert run.coalesced_from == recent + timedelta(minutes=20)
    # hourly, down for 150: the fire 90 minutes ago was skipped (beyond grace), not coalesced
    old = now - timedelta(minutes=150)
    sqlite_store.create_job(job("old", schedule=f"{old.second} {old.minute} *"))
    sqlite_store.update_status("old", JobStatus(last_run=old))
    firing("old", old + timedelta(hours=2))
    (run,) = sqlite_store.list_runs("old")
    assert run.coalesced_from is None


def test_recovering_a_run_of_a_deleted_job_records_it_failed_and_launches_nothing(
    firing: Firing, sqlite_store: Store, ecs_client: Any, cluster: str, lease: Lease
) -> None:
    orphan = Run(job_id="gone", scheduled_for=FIRE, replica="dead-replica", token=lease.token - 1, expected=1)
    firing.recover(orphan, lease)
    (run,) = sqlite_store.list_runs("gone")
    assert (run.status, run.started, run.replica) == ("failed", 0, "test-replica")
    assert run.error == "job deleted before its run completed"
    assert running_tasks(ecs_client, cluster) == []
