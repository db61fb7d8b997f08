"""scheduld metrics that the process test cannot provoke with moto: RunTask throttling (moto
never throttles; RecordingECS, a real HTTP endpoint, does) and the opt-in per-job series.
Values are read from this process's prometheus_client registry, where the code records them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY

from common.config import ECSSettings
from scheduld import metrics
from scheduld.executor import TaskLauncher
from tests.scheduld.conftest import RecordingECS, job


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def per_job() -> Iterator[None]:
    metrics.configure(per_job=True)
    yield
    metrics.configure(per_job=False)


def test_throttled_attempts_are_counted_though_botocore_retries_them(recording_ecs: RecordingECS) -> None:
    launcher = TaskLauncher(recording_ecs.client(max_attempts=3), ECSSettings(launch_rate_per_second=0))
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
    launcher = TaskLauncher(recording_ecs.client(max_attempts=2), ECSSettings(launch_rate_per_second=0))
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
