"""Running counts shared by fires that ask together (scheduld/running.py), on the moto server.

The ListTasks calls are observed with botocore's own event hooks on the client; the first call
is held for a moment so the other fires of the second are certain to be waiting for it.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from scheduld.executor import TaskLauncher, started_by
from tests.scheduld.conftest import job

FIRE = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
FIRES = 12


class ListTasksCalls:
    """Records ListTasks parameters; holds the first call; may refuse cluster-wide listings."""

    def __init__(self, ecs_client: Any, *, refuse_cluster_listing: bool = False) -> None:
        self.calls: list[dict[str, Any]] = []
        self._refuse = refuse_cluster_listing
        self._lock = threading.Lock()
        ecs_client.meta.events.register("before-parameter-build.ecs.ListTasks", self._before)

    def _before(self, params: dict[str, Any], **_: Any) -> None:
        with self._lock:
            self.calls.append(dict(params))
            first = len(self.calls) == 1
        if first:
            time.sleep(0.3)
        if self._refuse and "desiredStatus" in params:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "ListTasks")

    @property
    def per_job(self) -> int:
        return sum(1 for call in self.calls if "startedBy" in call)

    @property
    def cluster_wide(self) -> int:
        return sum(1 for call in self.calls if call.get("desiredStatus") == "RUNNING")


def count_together(launcher: TaskLauncher, job_ids: list[str]) -> dict[str, int]:
    barrier = threading.Barrier(len(job_ids))
    counts: dict[str, int] = {}

    def ask(job_id: str) -> None:
        barrier.wait()
        counts[job_id] = launcher.running_count(job(job_id), second=FIRE, fires=len(job_ids))

    threads = [threading.Thread(target=ask, args=(job_id,)) for job_id in job_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return counts


def launch_some(launcher: TaskLauncher, ecs_client: Any, cluster: str) -> dict[str, int]:
    """Jobs j0 (3 launched, 1 of them stopped) and j1 (1 launched); the others have none."""
    launcher.launch(job("j0"), 3, scheduled=FIRE)
    launcher.launch(job("j1"), 1, scheduled=FIRE)
    j0_marker = started_by("ecs-scheduler", "j0")
    first = ecs_client.list_tasks(cluster=cluster, startedBy=j0_marker)["taskArns"][0]
    ecs_client.stop_task(cluster=cluster, task=first, reason="done")
    return {f"j{n}": 0 for n in range(FIRES)} | {"j0": 2, "j1": 1}


def test_fires_asking_together_share_one_cluster_listing(
    launcher: TaskLauncher, ecs_client: Any, cluster: str
) -> None:
    expected = launch_some(launcher, ecs_client, cluster)
    calls = ListTasksCalls(ecs_client)
    assert count_together(launcher, sorted(expected)) == expected
    assert (calls.per_job, calls.cluster_wide) == (0, 1)  # one listing served all 12 fires


def test_a_lone_fire_counts_its_own_job(launcher: TaskLauncher, ecs_client: Any, cluster: str) -> None:
    launch_some(launcher, ecs_client, cluster)
    calls = ListTasksCalls(ecs_client)
    assert launcher.running_count(job("j0"), second=FIRE, fires=1) == 2
    assert launcher.running_count(job("j1"), second=FIRE, fires=2) == 1  # as cheap as a listing
    assert (calls.per_job, calls.cluster_wide) == (2, 0)


def test_a_listing_serves_only_its_own_second(launcher: TaskLauncher, ecs_client: Any, cluster: str) -> None:
    expected = launch_some(launcher, ecs_client, cluster)
    calls = ListTasksCalls(ecs_client)
    assert count_together(launcher, sorted(expected)) == expected
    launcher.launch(job("j5"), 1, scheduled=FIRE)  # j5's next second sees its new task
    later = launcher.running_count(job("j5"), second=FIRE + timedelta(seconds=1), fires=FIRES)
    assert later == 1 and calls.cluster_wide == 2


def test_a_failed_listing_leaves_each_fire_to_count_its_own_job(
    launcher: TaskLauncher, ecs_client: Any, cluster: str
) -> None:
    expected = launch_some(launcher, ecs_client, cluster)
    calls = ListTasksCalls(ecs_client, refuse_cluster_listing=True)
    assert count_together(launcher, sorted(expected)) == expected
    assert (calls.per_job, calls.cluster_wide) == (FIRES, 1)
