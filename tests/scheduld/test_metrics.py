"""scheduld metrics that the process test cannot provoke with moto: RunTask throttling (moto
never throttles; RecordingECS, a real HTTP endpoint, does), the opt-in per-job series, and
a reconcile's drift (deterministic only when reconcile is called directly).
Values are read from this process's prometheus_client registry, where the code records them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import REGISTRY

from common.bus.sqs import SQSEventBus
from common.config import ECSSettings, Settings
from common.store.base import JobStore
from scheduld import metrics
from scheduld.daemon import Daemon
from scheduld.executor import TaskLauncher
from scheduld.triggers import TriggerRegistry
from tests.scheduld.conftest import RecordingECS, job


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def per_job() -> Iterator[None]:
    metrics.configure(per_job=True)
    yield
    metrics.configure(per_job=False)


def test_throttled_attempts_are_counted_though_botocore_retries_them(recording_ecs: RecordingECS) -> None:
    launcher = TaskLauncher(recording_ecs.client(max_attempts=3), ECSSettings())
    recording_ecs.throttle_next = 2
    before = {
        "throttles": sample("ecs_scheduler_run_task_throttles_total"),
        "ok": sample("ecs_scheduler_run_task_calls_total", result="ok"),
        "started": sample("ecs_scheduler_tasks_started_total"),
        "latency": sample("ecs_scheduler_run_task_duration_seconds_count"),
    }
    result = launcher.launch(job("throttled", taskCount=12), 12, scheduled=datetime.now(UTC))
    assert len(result.tasks) == 12 and not result.failures
    assert sample("ecs_scheduler_run_task_throttles_total") - before["throttles"] == 2
    assert sample("ecs_scheduler_run_task_calls_total", result="ok") - before["ok"] == 2  # 10 + 2
    assert sample("ecs_scheduler_tasks_started_total") - before["started"] == 12
    assert sample("ecs_scheduler_run_task_duration_seconds_count") - before["latency"] == 2


def test_a_throttled_call_that_runs_out_of_attempts_fails_its_tasks(recording_ecs: RecordingECS) -> None:
    launcher = TaskLauncher(recording_ecs.client(max_attempts=2), ECSSettings())
    recording_ecs.throttle_next = 3  # botocore's retries max_attempts counts retries: 1 + 2 attempts
    reason = {"reason": "ThrottlingException"}
    before = sample("ecs_scheduler_run_task_failures_total", **reason)
    result = launcher.launch(job("given-up", taskCount=3), 3, scheduled=datetime.now(UTC))
    assert not result.tasks and result.failures
    assert sample("ecs_scheduler_run_task_failures_total", **reason) - before == 3


def test_per_job_series_only_when_enabled(per_job: None) -> None:
    metrics.fired("small-install-job", "launched")
    assert sample("ecs_scheduler_job_fires_total", job_id="small-install-job", outcome="launched") == 1
    metrics.configure(per_job=False)
    metrics.fired("big-install-job", "launched")
    assert sample("ecs_scheduler_job_fires_total", job_id="big-install-job", outcome="launched") == 0


def test_a_batch_counts_each_fire_by_outcome_and_per_job_only_when_enabled(per_job: None) -> None:
    outcomes = {"herd-a": "launched", "herd-b": "launched", "herd-c": "failed"}
    before = {o: sample("ecs_scheduler_fires_total", outcome=o) for o in ("launched", "failed")}
    metrics.fired_many({"launched": 2, "failed": 1}, lambda: outcomes.items())
    assert sample("ecs_scheduler_fires_total", outcome="launched") - before["launched"] == 2
    assert sample("ecs_scheduler_fires_total", outcome="failed") - before["failed"] == 1
    assert sample("ecs_scheduler_job_fires_total", job_id="herd-c", outcome="failed") == 1
    metrics.configure(per_job=False)
    metrics.fired_many({"launched": 1}, lambda: pytest.fail("asked for the fires without metrics.per_job"))
    assert sample("ecs_scheduler_fires_total", outcome="launched") - before["launched"] == 3


def test_a_periodic_reconcile_counts_the_drift_it_corrects(
    daemon_settings: Settings,
    sqlite_store: JobStore,
    launcher: TaskLauncher,
    triggers: TriggerRegistry,
    sqs_client: Any,
) -> None:
    bus = SQSEventBus.from_settings(daemon_settings.sqs, client=sqs_client)
    daemon = Daemon(daemon_settings, store=sqlite_store, bus=bus, launcher=launcher, triggers=triggers)
    try:
        sqlite_store.create_job(job("kept"))
        sqlite_store.create_job(job("deleted-silently"))
        durations = sample("ecs_scheduler_reconcile_duration_seconds_count")
        drift = sample("ecs_scheduler_reconcile_drift_corrected_total")
        daemon.reconcile(catch_up=True)  # a takeover loads everything: no drift
        assert sample("ecs_scheduler_reconcile_drift_corrected_total") == drift
        sqlite_store.create_job(job("added-silently"))  # their change events were lost
        sqlite_store.delete_job("deleted-silently")
        daemon.reconcile()
        assert sample("ecs_scheduler_reconcile_drift_corrected_total") - drift == 2
        assert sample("ecs_scheduler_reconcile_duration_seconds_count") - durations == 2
        assert daemon.last_reconcile is not None
        assert sample("ecs_scheduler_reconcile_last_timestamp_seconds") == daemon.last_reconcile.timestamp()
        assert sample("ecs_scheduler_jobs_scheduled") == 2
    finally:
        bus.close()
