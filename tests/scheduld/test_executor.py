"""Launching on the moto server: counts, batching, attribution, overrides, running awareness."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from common.config import ECSSettings
from common.models import Job
from scheduld.executor import JOB_TAG, TaskLauncher, started_by
from tests.scheduld.conftest import CONTAINER, RecordingECS, job, running_tasks

FIRE = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_started_by_fits_ecs_limit_and_differs_per_job() -> None:
    long_id = "x" * 255
    marker = started_by("ecs-scheduler-abcde", long_id)
    assert len(marker) <= 36
    assert started_by("p", "a") != started_by("p", "b")
    assert started_by("p", "a") == started_by("p", "a")


def test_launch_starts_count_with_overrides_and_tags(
    launcher: TaskLauncher, ecs_client: Any, cluster: str
) -> None:
    spec = job(
        "with-overrides",
        overrides=[
            {"containerName": CONTAINER, "environment": {"SLEEP_SECONDS": "10"}, "command": ["sleep", "10"]}
        ],
        tags=[{"key": "team", "value": "data"}],
        group="nightly",
    )
    result = launcher.launch(spec, 3, scheduled=FIRE)
    assert len(result.tasks) == 3 and result.failures == []
    tasks = running_tasks(ecs_client, cluster)
    assert {t["taskArn"] for t in tasks} == {t.task_id for t in result.tasks}
    task = tasks[0]
    assert task["startedBy"] == started_by("ecs-scheduler", "with-overrides")
    assert task["overrides"]["containerOverrides"] == [
        {
            "name": CONTAINER,
            "environment": [{"name": "SLEEP_SECONDS", "value": "10"}],
            "command": ["sleep", "10"],
        }
    ]
    tags = ecs_client.list_tags_for_resource(resourceArn=task["taskArn"])["tags"]
    assert {"key": JOB_TAG, "value": "with-overrides"} in tags
    assert {"key": "team", "value": "data"} in tags


def test_launch_above_ten_is_batched(launcher: TaskLauncher, ecs_client: Any, cluster: str) -> None:
    result = launcher.launch(job("many"), 23, scheduled=FIRE)
    assert len(result.tasks) == 23
    assert len(running_tasks(ecs_client, cluster)) == 23


def test_running_count_is_per_job_not_per_task_definition(
    launcher: TaskLauncher, ecs_client: Any, cluster: str
) -> None:
    first, second = job("first"), job("second")
    launcher.launch(first, 2, scheduled=FIRE)
    launcher.launch(second, 3, scheduled=FIRE)
    assert launcher.running_count(first) == 2
    assert launcher.running_count(second) == 3
    task = running_tasks(ecs_client, cluster)[0]
    ecs_client.stop_task(cluster=cluster, task=task["taskArn"], reason="done")
    assert launcher.running_count(first) + launcher.running_count(second) == 4


def test_batches_of_ten_and_client_tokens_as_sent(recording_ecs: RecordingECS) -> None:
    """Recording endpoint, not moto: moto 5.2.5 crashes on RunTask with an awsvpc
    networkConfiguration (AttributeError private_dns_name) and accepts clientToken without
    enforcing it, so Fargate networking and the tokens are checked on what boto3 sent."""
    launcher = TaskLauncher(recording_ecs.client(), ECSSettings(cluster="c"))
    network = {
        "awsvpcConfiguration": {
            "subnets": ["subnet-1"],
            "securityGroups": ["sg-1"],
            "assignPublicIp": "ENABLED",
        }
    }
    spec = job(
        "fargate",
        networkConfiguration=network,
        platformVersion="1.4.0",
        propagateTags="TASK_DEFINITION",
        enableExecuteCommand=True,
        launchType=None,
        capacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}],
    )
    result = launcher.launch(spec, 23, scheduled=FIRE)
    calls = recording_ecs.run_task_calls()
    assert [call["count"] for call in calls] == [10, 10, 3]
    assert len(result.tasks) == 23
    first = calls[0]
    assert first["networkConfiguration"] == network
    assert first["capacityProviderStrategy"] == [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    assert "launchType" not in first
    assert (first["platformVersion"], first["propagateTags"], first["enableExecuteCommand"]) == (
        "1.4.0",
        "TASK_DEFINITION",
        True,
    )
    assert first["startedBy"] == started_by("ecs-scheduler", "fargate")
    tokens = [call["clientToken"] for call in calls]
    assert len(set(tokens)) == 3 and all(len(token) <= 64 for token in tokens)
    again = TaskLauncher(recording_ecs.client(), ECSSettings(cluster="c"))
    again.launch(spec, 23, scheduled=FIRE)
    assert [call["clientToken"] for call in recording_ecs.run_task_calls()[3:]] == tokens  # same fire


def test_throttling_is_retried_with_backoff(recording_ecs: RecordingECS) -> None:
    """Recording endpoint, not moto: moto never throttles; this one answers
    ThrottlingException twice, then succeeds."""
    recording_ecs.throttle_next = 2
    launcher = TaskLauncher(recording_ecs.client(max_attempts=5), ECSSettings(cluster="c"))
    result = launcher.launch(job("throttled"), 1, scheduled=FIRE)
    assert len(result.tasks) == 1 and result.failures == []
    calls = recording_ecs.run_task_calls()
    assert len(calls) == 3
    assert len({call["clientToken"] for call in calls}) == 1  # retries reuse the token


def test_persistent_throttling_gives_up_and_records_failure(recording_ecs: RecordingECS) -> None:
    """Recording endpoint (moto never throttles): retries are bounded, then the failure is kept."""
    recording_ecs.throttle_next = 100
    launcher = TaskLauncher(recording_ecs.client(max_attempts=3), ECSSettings(cluster="c"))
    result = launcher.launch(job("throttled"), 25, scheduled=FIRE)
    assert result.tasks == []
    assert len(result.failures) == 1 and "ThrottlingException" in (result.failures[0].detail or "")
    calls = recording_ecs.run_task_calls()
    assert 2 <= len(calls) <= 4  # botocore's bounded retries of the first batch...
    assert len({call["clientToken"] for call in calls}) == 1  # ...and no further batches


def test_run_task_failures_are_collected(launcher: TaskLauncher) -> None:
    result = launcher.launch(
        Job.model_validate({"id": "x", "taskDefinition": "no-such-task", "schedule": "0"}), 2, scheduled=FIRE
    )
    assert result.tasks == []
    assert result.failures and result.failures[0].reason
