"""A stalled ECS endpoint (accepts connections, never answers) cannot hold a fire for long:
scheduld's ECS client bounds each call by aws.ecs_read_timeout_seconds × retry.aws_max_attempts, and
the failure recorded names what failed, not the endpoint URL."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from common.config import AWSSettings, ECSSettings, RetrySettings, Settings
from common.errors import LaunchError
from scheduld.executor import TaskLauncher, ecs_client
from tests.scheduld.conftest import job
from tests.servers import StalledServer

FIRE = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_a_stalled_ecs_call_fails_within_its_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(
        aws=AWSSettings(ecs_read_timeout_seconds=0.5, connect_timeout_seconds=0.5),
        ecs=ECSSettings(cluster="c"),
        retry=RetrySettings(aws_max_attempts=2),
    )
    with StalledServer() as stalled:
        monkeypatch.setenv("AWS_ENDPOINT_URL", stalled.url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        launcher = TaskLauncher(ecs_client(settings), settings.ecs)
        started = time.monotonic()
        result = launcher.launch(job("stalled"), 1, scheduled=FIRE)
        launched_in = time.monotonic() - started
        started = time.monotonic()
        with pytest.raises(LaunchError) as counting:
            launcher.running_count(job("stalled"))
        counted_in = time.monotonic() - started
    assert not result.tasks and result.failures[0].reason == "RunTaskError"
    detail = result.failures[0].detail or ""
    assert "ECS did not answer in time" in detail and stalled.url not in detail
    assert "did not answer" in counting.value.message
    # two attempts of 0.5 s plus botocore's backoff between them; unbounded this was minutes
    assert launched_in < 4 and counted_in < 4
