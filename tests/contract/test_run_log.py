"""The RunLog contract (claims, outcomes, history) behind exactly-once firing, run unchanged
against every backend (conftest ``store``). Claims need a lease and outcomes a job, so these
tests see the whole ``Store``."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from common.errors import JobNotFoundError, LeaseLostError
from common.models import Job, JobStatus, LaunchedTask, Lease, Run
from common.store.base import Store
from tests.contract.test_leases import lead

T0 = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


def run(lease: Lease, job_id: str = "j", at: datetime = T0, **fields: object) -> Run:
    return Run.model_validate(
        {"jobId": job_id, "scheduledFor": at, "replica": lease.holder, "token": lease.token, **fields}
    )


def test_claim_is_create_if_absent(store: Store) -> None:
    lease = lead(store)
    assert store.claim_run(run(lease), lease) is True
    assert store.claim_run(run(lease), lease) is False
    assert store.claim_run(run(lease, at=T0 + timedelta(seconds=1)), lease) is True


def test_only_one_of_many_concurrent_claims_wins(store: Store) -> None:
    lease = lead(store)
    wins: list[bool] = []
    barrier = threading.Barrier(8)

    def claim() -> None:
        barrier.wait()
        wins.append(store.claim_run(run(lease), lease))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(wins) == [False] * 7 + [True]


def test_stale_leader_with_expired_token_cannot_claim(store: Store) -> None:
    stale = lead(store, "a", ttl=0.2)
    time.sleep(0.3)
    with pytest.raises(LeaseLostError):
        store.claim_run(run(stale), stale)
    current = lead(store, "b")
    with pytest.raises(LeaseLostError):
        store.claim_run(run(stale), stale)  # a token from an older term is refused too
    assert store.claim_run(run(current), current) is True


def test_unfinished_claim_of_a_dead_leader_can_be_reclaimed_once(store: Store) -> None:
    dead = lead(store, "a", ttl=0.2)
    assert store.claim_run(run(dead), dead) is True  # then "a" dies before finishing
    time.sleep(0.3)
    heir = lead(store, "b")
    assert store.claim_run(run(heir), heir) is True
    assert store.claim_run(run(heir), heir) is False
    finished = run(heir, status="launched", tasks=[LaunchedTask(task_id="t1")])
    store.finish_run(finished)
    third = lead(store, "b")
    assert store.claim_run(run(third), third) is False  # finished runs are never re-claimed


def test_unfinished_runs_of_earlier_terms_are_found(store: Store) -> None:
    dead = lead(store, "a", ttl=0.2)
    store.claim_run(run(dead, job_id="x"), dead)
    done = run(dead, job_id="y")
    store.claim_run(done, dead)
    store.finish_run(done.model_copy(update={"status": "launched"}))
    time.sleep(0.3)
    heir = lead(store, "b")
    assert [r.job_id for r in store.unfinished_runs(older_than_token=heir.token)] == ["x"]
    store.claim_run(run(heir, job_id="x"), heir)
    assert store.unfinished_runs(older_than_token=heir.token) == []


def test_finish_and_list_newest_first(store: Store) -> None:
    lease = lead(store)
    for second in range(5):
        claimed = run(lease, at=T0 + timedelta(seconds=second))
        assert store.claim_run(claimed, lease)
        store.finish_run(claimed.model_copy(update={"status": "launched", "started": second}))
    runs = store.list_runs("j", skip=0, count=3)
    assert [r.scheduled_for.second for r in runs] == [4, 3, 2]
    assert runs[0].status == "launched" and runs[0].started == 4
    assert [r.scheduled_for.second for r in store.list_runs("j", skip=3, count=3)] == [1, 0]
    assert store.list_runs("other") == []


def test_finish_by_a_replica_that_lost_the_claim_is_ignored(store: Store) -> None:
    dead = lead(store, "a", ttl=0.2)
    store.claim_run(run(dead), dead)
    time.sleep(0.3)
    heir = lead(store, "b")
    store.claim_run(run(heir), heir)
    store.finish_run(run(dead, status="failed", error="late"))
    (only,) = store.list_runs("j")
    assert only.replica == "b" and only.status == "claimed"


def test_prune_keeps_newest_and_drops_old(store: Store) -> None:
    lease = lead(store)
    for second in range(10):
        store.claim_run(run(lease, at=T0 + timedelta(seconds=second)), lease)
    store.claim_run(run(lease, job_id="other"), lease)
    assert store.prune_runs("j", keep=4) == 6
    assert [r.scheduled_for.second for r in store.list_runs("j", count=100)] == [9, 8, 7, 6]
    assert store.prune_runs("j", keep=100, older_than=T0 + timedelta(seconds=8)) == 2
    assert [r.scheduled_for.second for r in store.list_runs("j", count=100)] == [9, 8]
    assert len(store.list_runs("other")) == 1


def test_deleting_a_job_deletes_its_runs(store: Store) -> None:
    store.create_job(Job.model_validate({"id": "j", "taskDefinition": "t", "schedule": "0"}))
    lease = lead(store)
    store.claim_run(run(lease), lease)
    store.delete_job("j")
    assert store.list_runs("j") == []


def test_record_run_finishes_prunes_and_writes_status_together(store: Store) -> None:
    store.create_job(Job.model_validate({"id": "j", "taskDefinition": "t", "schedule": "0"}))
    lease = lead(store)
    for second in range(4):
        store.claim_run(run(lease, at=T0 + timedelta(seconds=second)), lease)
    latest = T0 + timedelta(seconds=3)
    tasks = [LaunchedTask(task_id="t9", host_id="h")]
    finished = run(lease, at=latest, status="launched", started=1, tasks=tasks)
    next_run = latest + timedelta(minutes=1)
    status = JobStatus(last_run=latest, last_run_tasks=tasks, estimated_next_run=next_run)
    assert store.record_run(finished, status, keep=2) is True
    runs = store.list_runs("j", count=100)
    assert [(r.scheduled_for.second, r.status) for r in runs] == [(3, "launched"), (2, "claimed")]
    job = store.get_job("j")
    assert (job.last_run, job.last_run_tasks) == (latest, tasks)
    assert job.estimated_next_run == next_run


def test_record_run_of_a_deleted_job_returns_false_and_recreates_nothing(store: Store) -> None:
    store.create_job(Job.model_validate({"id": "j", "taskDefinition": "t", "schedule": "0"}))
    lease = lead(store)
    store.claim_run(run(lease), lease)
    store.delete_job("j")
    assert store.record_run(run(lease, status="launched"), JobStatus(last_run=T0), keep=10) is False
    with pytest.raises(JobNotFoundError):
        store.get_job("j")
