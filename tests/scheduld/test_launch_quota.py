"""The global cap of tasks launched per minute: fires beyond it are recorded as runs with
status ``throttled`` and a reason (never silently dropped), against ECS on the moto server."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from common.config import ECSSettings
from common.models import Lease
from common.store.base import JobStore
from scheduld.executor import LaunchQuota, TaskLauncher
from scheduld.triggers import TriggerRegistry
from tests.scheduld.conftest import job, make_firing, running_tasks

FIRE = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_fires_beyond_the_cap_are_recorded_throttled(
    sqlite_store: JobStore,
    ecs_client: Any,
    ecs_settings: ECSSettings,
    triggers: TriggerRegistry,
    lease: Lease,
    cluster: str,
) -> None:
    launcher = TaskLauncher(ecs_client, ecs_settings, quota=LaunchQuota(5))
    firing = make_firing(sqlite_store, launcher, triggers, lease)
    for name in ("a", "b", "c"):
        sqlite_store.create_job(job(name, taskCount=3))
        firing(name, FIRE)
    assert len(running_tasks(ecs_client, cluster)) == 5  # 3 + 2, then nothing
    (a,), (b,), (c,) = (sqlite_store.list_runs(name) for name in ("a", "b", "c"))
    assert a.status == "launched" and a.started == 3
    assert b.status == "partially_launched" and b.started == 2
    assert b.failures[0].reason == "Throttled" and "1 of 3 tasks" in (b.failures[0].detail or "")
    assert c.status == "throttled" and c.started == 0
    assert c.error and "5 tasks per minute" in c.error
    assert sqlite_store.get_job("c").last_run == FIRE  # the fire is on record


def test_the_cap_is_a_sliding_minute() -> None:
    now = [0.0]
    quota = LaunchQuota(10, clock=lambda: now[0])
    assert quota.take(6) == 6
    now[0] = 30
    assert quota.take(6) == 4
    assert quota.take(1) == 0
    quota.give_back(2)  # RunTask refused two of them
    assert quota.take(3) == 2
    now[0] = 60
    assert quota.take(10) == 6  # the first six are out of the window
    assert LaunchQuota(0).take(1000) == 1000  # 0: no cap
