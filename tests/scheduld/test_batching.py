"""Group commit of claims and records (scheduld/batching.py, ``RunLog.claim_runs`` /
``record_runs``): on the real SQLite store, and a herd fired from many threads through Firing
against the moto server, each job launched once and recorded once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from common.errors import LeaseLostError, StoreUnavailableError
from common.models import JobStatus, Lease, Run
from common.store.base import RunRecord, Store
from scheduld.batching import GroupCommit
from scheduld.executor import TaskLauncher, started_by
from scheduld.triggers import TriggerRegistry
from tests.scheduld.conftest import job, make_firing

FIRE = datetime(2026, 1, 1, tzinfo=UTC)


def test_callers_arriving_during_a_write_are_written_together() -> None:
    writes: list[list[int]] = []
    release = threading.Event()

    def write(items: Any) -> list[int]:
        writes.append(list(items))
        if len(writes) == 1:
            release.wait(10)  # the first write is slow: others gather meanwhile
        return [item * 10 for item in items]

    group: GroupCommit[int, int] = GroupCommit(write)
    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(group.commit, 0)
        while not writes:
            threading.Event().wait(0.01)
        rest = [pool.submit(group.commit, n) for n in range(1, 8)]
        threading.Event().wait(0.2)
        release.set()
        assert first.result() == 0 and [f.result() for f in rest] == [n * 10 for n in range(1, 8)]
    assert writes[0] == [0] and sorted(writes[1]) == list(range(1, 8))  # two writes for eight


def test_a_failed_write_fails_each_of_its_callers() -> None:
    def write(items: Any) -> list[int]:
        raise StoreUnavailableError("disk gone")

    group: GroupCommit[int, int] = GroupCommit(write)
    with pytest.raises(StoreUnavailableError):
        group.commit(1)
    with pytest.raises(StoreUnavailableError):  # and the next caller writes again
        group.commit(2)


def test_sqlite_claims_and_records_runs_in_one_write(sqlite_store: Store) -> None:
    lease = sqlite_store.acquire_lease("scheduld", holder="me", ttl=60)
    assert lease is not None
    for name in ("a", "b", "c"):
        sqlite_store.create_job(job(name))
    runs = [Run(job_id=name, scheduled_for=FIRE, replica="me", token=lease.token) for name in "abc"]
    assert sqlite_store.claim_run(runs[1], lease)
    assert sqlite_store.claim_runs(runs, lease) == [True, False, True]  # b was claimed already
    stale = Lease(name=lease.name, holder="me", token=lease.token + 1, expires_at=lease.expires_at)
    with pytest.raises(LeaseLostError):
        sqlite_store.claim_runs([runs[0].model_copy(update={"scheduled_for": FIRE + timedelta(1)})], stale)

    sqlite_store.delete_job("c")
    finished = [run.model_copy(update={"status": "launched", "started": 1}) for run in runs]
    status = JobStatus(last_run=FIRE)
    answers = sqlite_store.record_runs([RunRecord(run, status, keep=10) for run in finished])
    assert answers == [True, True, False]  # c was deleted meanwhile
    assert sqlite_store.get_job("a").last_run == FIRE and sqlite_store.get_run("b", FIRE).status == "launched"


def test_a_herd_fired_from_many_threads_launches_and_records_each_job_once(
    sqlite_store: Store, launcher: TaskLauncher, triggers: TriggerRegistry, ecs_client: Any, cluster: str
) -> None:
    lease = sqlite_store.acquire_lease("scheduld", holder="me", ttl=600)
    assert lease is not None
    names = [f"herd-{n:02d}" for n in range(40)]
    for name in names:
        sqlite_store.create_job(job(name))
    firing = make_firing(sqlite_store, launcher, triggers, lease, fires_due=lambda _: len(names))
    second = datetime.now(UTC).replace(microsecond=0)  # recent: older runs are pruned as recorded
    with ThreadPoolExecutor(8) as pool:  # the ECS client's connection pool holds 10
        list(pool.map(lambda name: firing(name, second), names * 2))  # every fire twice
    for name in names:
        arns = ecs_client.list_tasks(cluster=cluster, startedBy=started_by("ecs-scheduler", name))["taskArns"]
        assert len(arns) == 1, name
        run = sqlite_store.get_run(name, second)
        assert run.status == "launched" and [t.task_id for t in run.tasks] == arns
        assert sqlite_store.get_job(name).last_run == second
