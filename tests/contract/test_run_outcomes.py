"""The run log's tracking methods (open_runs, record_outcome): the RunLog contract behind
task outcomes, run unchanged against every store (conftest ``store``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from common.models import ContainerOutcome, Job, Lease, Run, TrackedTask
from common.store.base import Store

T0 = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


def lead(store: Store) -> Lease:
    lease = store.acquire_lease("scheduld", holder="a", ttl=30)
    assert lease is not None
    return lease


def launched(store: Store, lease: Lease, job_id: str, at: datetime, *tasks: str) -> Run:
    run = Run(job_id=job_id, scheduled_for=at, replica="a", token=lease.token)
    assert store.claim_run(run, lease)
    done = run.model_copy(
        update={
            "status": "launched",
            "tasks": [TrackedTask(task_id=arn) for arn in tasks],
            "started": len(tasks),
        }
    )
    store.finish_run(done)
    return done


def ended(run: Run, status: str, exit_code: int, at: datetime) -> Run:
    tasks = [
        task.model_copy(
            update={
                "last_status": "STOPPED",
                "stop_code": "EssentialContainerExited",
                "started_at": at - timedelta(seconds=30),
                "stopped_at": at,
                "duration_seconds": 30.0,
                "containers": [ContainerOutcome(name="main", exit_code=exit_code, reason="done")],
            }
        )
        for task in run.tasks
    ]
    return run.model_copy(update={"status": status, "tasks": tasks, "ended_at": at, "duration_seconds": 30.0})


def test_open_runs_lists_only_runs_still_tracked_in_run_id_order_with_keyset_pages(store: Store) -> None:
    lease = lead(store)
    for job_id in ("b", "a"):
        store.create_job(Job(id=job_id, task_definition="td", schedule="0 0 0"))
    launched(store, lease, "b", T0, "arn:b1")
    launched(store, lease, "a", T0 + timedelta(seconds=1), "arn:a2")
    launched(store, lease, "a", T0, "arn:a1")
    skipped = Run(job_id="a", scheduled_for=T0 + timedelta(seconds=5), replica="a", token=lease.token)
    assert store.claim_run(skipped, lease)
    store.finish_run(skipped.model_copy(update={"status": "skipped"}))

    runs = store.open_runs()
    assert [(r.job_id, r.scheduled_for) for r in runs] == [
        ("a", T0),
        ("a", T0 + timedelta(seconds=1)),
        ("b", T0),
    ]
    assert runs[0].tasks == [TrackedTask(task_id="arn:a1")]
    first = store.open_runs(limit=1)
    assert store.open_runs(after=first[0].run_id, limit=5) == runs[1:]


def test_record_outcome_keeps_progress_then_ends_the_run_once(store: Store) -> None:
    lease = lead(store)
    store.create_job(Job(id="j", task_definition="td", schedule="0 0 0"))
    run = launched(store, lease, "j", T0, "arn:1", "arn:2")
    progress = run.model_copy(
        update={"tasks": [run.tasks[0].model_copy(update={"last_status": "STOPPED"}), run.tasks[1]]}
    )
    assert store.record_outcome(progress) is True
    assert store.list_runs("j")[0].tasks[0].last_status == "STOPPED"
    assert [r.run_id for r in store.open_runs()] == [run.run_id]  # still tracked
    assert store.get_job("j").last_run_status is None  # no outcome yet

    end = ended(run, "failed", 3, T0 + timedelta(minutes=1))
    assert store.record_outcome(end) is True
    assert store.record_outcome(ended(run, "succeeded", 0, T0 + timedelta(minutes=2))) is False
    stored = store.list_runs("j")[0]
    assert stored.status == "failed" and stored.ended_at == T0 + timedelta(minutes=1)
    assert stored.tasks[1].containers == [ContainerOutcome(name="main", exit_code=3, reason="done")]
    assert stored.duration_seconds == 30.0
    assert store.open_runs() == []


def test_ended_runs_keep_the_jobs_last_outcome_and_failure_streak(store: Store) -> None:
    lease = lead(store)
    store.create_job(Job(id="j", task_definition="td", schedule="0 0 0"))
    outcomes = [("failed", 1), ("timedOut", 137), ("succeeded", 0), ("failed", 2)]
    streaks = []
    for second, (status, code) in enumerate(outcomes):
        at = T0 + timedelta(seconds=second)
        run = launched(store, lease, "j", at, f"arn:{second}")
        assert store.record_outcome(ended(run, status, code, at + timedelta(minutes=1)))
        job = store.get_job("j")
        streaks.append((job.last_run_status, job.consecutive_failures))
    assert streaks == [("failed", 1), ("timedOut", 2), ("succeeded", 0), ("failed", 1)]
    job = store.get_job("j")
    assert job.last_success == T0 + timedelta(seconds=2, minutes=1)
    assert job.last_failure == T0 + timedelta(seconds=3, minutes=1)
    document = store.get_job_document("j")
    assert document["lastRunStatus"] == "failed" and document["consecutiveFailures"] == 1


def test_outcome_of_a_run_whose_job_was_deleted_is_not_recorded(store: Store) -> None:
    lease = lead(store)
    store.create_job(Job(id="j", task_definition="td", schedule="0 0 0"))
    run = launched(store, lease, "j", T0, "arn:1")
    store.delete_job("j")
    assert store.record_outcome(ended(run, "succeeded", 0, T0)) is False
    assert store.open_runs() == []
