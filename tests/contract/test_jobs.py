"""The JobStore contract (jobs role), run unchanged against every backend (conftest ``store``)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from common.errors import InvalidJobError, JobExistsError, JobNotFoundError
from common.models import Job, JobStatus, JobUpdate, LaunchedTask, apply_update
from common.store.base import JobStore, Store


def make_job(job_id: str, **fields: object) -> Job:
    return Job.model_validate({"id": job_id, "taskDefinition": "task", "schedule": "0 */5", **fields})


def test_create_then_get_returns_the_job(store: JobStore) -> None:
    job = make_job("a", overrides=[{"containerName": "c", "environment": {"K": "V"}}], maxCount=3)
    store.create_job(job)
    assert store.get_job("a") == job


def test_create_existing_id_conflicts_and_keeps_original(store: JobStore) -> None:
    store.create_job(make_job("a", taskCount=2))
    with pytest.raises(JobExistsError, match="Job a already exists"):
        store.create_job(make_job("a", taskCount=5))
    assert store.get_job("a").task_count == 2


def test_get_missing_raises_not_found(store: JobStore) -> None:
    with pytest.raises(JobNotFoundError, match="Job nope does not exist"):
        store.get_job("nope")


def test_jobs_read_together_are_those_read_one_by_one(store: JobStore) -> None:
    for n in range(3):
        store.create_job(make_job(f"j{n}", taskCount=n + 1))
    store.update_status("j1", JobStatus(last_run=datetime(2026, 1, 2, tzinfo=UTC)))
    found = store.get_jobs(["j2", "nope", "j1", "j1"])
    assert found == {"j1": store.get_job("j1"), "j2": store.get_job("j2")}
    assert found["j1"].last_run is not None
    assert store.get_jobs([]) == {}
    many = [f"j{n % 3}" for n in range(1200)] + [f"absent{n}" for n in range(600)]  # several queries
    assert set(store.get_jobs(many)) == {"j0", "j1", "j2"}


def test_update_applies_change_and_keeps_status(store: JobStore) -> None:
    store.create_job(make_job("a"))
    ran = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    store.update_status("a", JobStatus(last_run=ran))
    updated = store.update_job("a", lambda job: apply_update(job, JobUpdate(max_count=7)))
    assert updated.max_count == 7
    stored = store.get_job("a")
    assert stored.max_count == 7
    assert stored.last_run == ran


def test_update_missing_raises_not_found(store: JobStore) -> None:
    with pytest.raises(JobNotFoundError):
        store.update_job("nope", lambda job: job)


def test_update_whose_change_fails_writes_nothing(store: JobStore) -> None:
    store.create_job(make_job("a", taskCount=4))

    def bad_change(job: Job) -> Job:
        raise InvalidJobError({"taskCount": "no"})

    with pytest.raises(InvalidJobError):
        store.update_job("a", bad_change)
    assert store.get_job("a").task_count == 4


def test_concurrent_updates_are_all_kept(store: JobStore) -> None:
    """Each writer sets its own override; compare-and-set must keep every one of them."""
    store.create_job(make_job("a", overrides=[]))
    writers = 8

    def add_override(index: int) -> None:
        def change(job: Job) -> Job:
            overrides = [o.to_document() for o in job.overrides or []]
            overrides.append({"containerName": f"c{index}"})
            return Job.model_validate(job.model_dump(by_alias=True) | {"overrides": overrides})

        store.update_job("a", change)

    threads = [threading.Thread(target=add_override, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    names = {o.container_name for o in store.get_job("a").overrides or []}
    assert names == {f"c{i}" for i in range(writers)}


def test_delete_removes_and_missing_raises(store: JobStore) -> None:
    store.create_job(make_job("a"))
    store.delete_job("a")
    with pytest.raises(JobNotFoundError):
        store.get_job("a")
    with pytest.raises(JobNotFoundError):
        store.delete_job("a")


def test_list_pages_are_ordered_by_id_and_stable(store: JobStore) -> None:
    ids = [f"job-{n:03d}" for n in range(25)]
    for job_id in reversed(ids):
        store.create_job(make_job(job_id))
    assert [j.id for j in store.list_jobs(skip=0, count=10)] == ids[:10]
    assert [j.id for j in store.list_jobs(skip=10, count=10)] == ids[10:20]
    assert [j.id for j in store.list_jobs(skip=20, count=10)] == ids[20:]
    assert store.list_jobs(skip=25, count=10) == []
    assert store.count_jobs() == 25


def test_list_includes_status(store: JobStore) -> None:
    store.create_job(make_job("a"))
    store.update_status("a", JobStatus(last_run_tasks=[LaunchedTask(task_id="t1", host_id="h")]))
    (listed,) = store.list_jobs(skip=0, count=10)
    assert listed.last_run_tasks == [LaunchedTask(task_id="t1", host_id="h")]


def test_scan_and_iter_walk_every_job_in_order(store: JobStore) -> None:
    ids = sorted(f"j{n}" for n in range(23))
    for job_id in ids:
        store.create_job(make_job(job_id))
    assert [j.id for j in store.scan_jobs(after="j15", limit=3)] == [i for i in ids if i > "j15"][:3]
    assert [j.id for j in store.iter_jobs(page_size=5)] == ids


def test_count_of_empty_store_is_zero(store: JobStore) -> None:
    assert store.count_jobs() == 0
    assert store.list_jobs(skip=0, count=10) == []
    assert list(store.iter_jobs()) == []


def test_status_updates_of_many_jobs_skip_those_gone(store: JobStore) -> None:
    ran = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)
    nxt = datetime(2026, 5, 6, 7, 13, 9, tzinfo=UTC)
    store.create_job(make_job("a", taskCount=3))
    store.create_job(make_job("b"))
    store.update_status("a", JobStatus(last_run=ran))
    missing = store.update_statuses(
        {"a": JobStatus(estimated_next_run=nxt), "gone": JobStatus(estimated_next_run=nxt), "b": JobStatus()}
    )
    assert missing == ["gone"]
    a, b = store.get_job("a"), store.get_job("b")
    assert (a.last_run, a.estimated_next_run, a.task_count) == (ran, nxt, 3)  # only what was given
    assert b.estimated_next_run is None
    with pytest.raises(JobNotFoundError):
        store.get_job("gone")  # not recreated


def test_status_update_writes_only_status(store: JobStore) -> None:
    store.create_job(make_job("a", taskCount=3))
    ran = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)
    nxt = datetime(2026, 5, 6, 7, 13, 9, tzinfo=UTC)
    store.update_status(
        "a",
        JobStatus(last_run=ran, last_run_tasks=[LaunchedTask(task_id="arn:1")], estimated_next_run=nxt),
    )
    job = store.get_job("a")
    assert (job.last_run, job.estimated_next_run, job.task_count) == (ran, nxt, 3)
    assert job.last_run_tasks == [LaunchedTask(task_id="arn:1")]
    # a partial status write keeps the other status fields
    store.update_status("a", JobStatus(estimated_next_run=ran))
    again = store.get_job("a")
    assert again.last_run == ran and again.estimated_next_run == ran
    # a field given as None is cleared; fields not given stay
    store.update_status("a", JobStatus(estimated_next_run=None))
    cleared = store.get_job("a")
    assert cleared.estimated_next_run is None and cleared.last_run == ran


def test_status_update_never_clobbers_a_concurrent_user_update(store: JobStore) -> None:
    store.create_job(make_job("a", taskCount=1))
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def user() -> None:
        try:
            for count in range(1, 21):
                barrier.wait() if count == 1 else None
                store.update_job("a", lambda job, c=count: apply_update(job, JobUpdate(task_count=c)))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def scheduld() -> None:
        try:
            barrier.wait()
            for second in range(20):
                store.update_status("a", JobStatus(last_run=datetime(2026, 1, 1, 0, 0, second, tzinfo=UTC)))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=user), threading.Thread(target=scheduld)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    job = store.get_job("a")
    assert job.task_count == 20
    assert job.last_run == datetime(2026, 1, 1, 0, 0, 19, tzinfo=UTC)


def test_status_update_of_deleted_job_does_not_recreate_it(store: JobStore) -> None:
    store.create_job(make_job("a"))
    store.delete_job("a")
    with pytest.raises(JobNotFoundError):
        store.update_status("a", JobStatus(last_run=datetime(2026, 1, 1, tzinfo=UTC)))
    with pytest.raises(JobNotFoundError):
        store.get_job("a")


def test_create_ignores_status_fields(store: JobStore) -> None:
    job = make_job("a", lastRun="2026-01-01T00:00:00Z")
    store.create_job(job)
    assert store.get_job("a").last_run is None


def test_every_field_round_trips(store: JobStore) -> None:
    job = make_job(
        "full",
        scheduleStart="2026-01-01T00:00:00Z",
        scheduleEnd="2030-01-01T00:00:00+02:00",
        timezone="Europe/Paris",
        taskCount=3,
        maxCount=9,
        trigger={"type": "sqs", "queueName": "q", "messagesPerTask": 10},
        suspended=True,
        overrides=[{"containerName": "c", "environment": {"A": "1"}, "command": ["run", "x"]}],
        launchType="FARGATE",
        platformVersion="LATEST",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": ["s-1"],
                "securityGroups": ["sg-1"],
                "assignPublicIp": "ENABLED",
            }
        },
        group="g",
        tags=[{"key": "team", "value": "data"}],
        propagateTags="TASK_DEFINITION",
        enableExecuteCommand=True,
    )
    store.create_job(job)
    assert store.get_job("full") == job


def test_served_documents_match_the_jobs(store: JobStore) -> None:
    store.create_job(make_job("a", maxCount=4, overrides=[{"containerName": "c", "environment": {"K": "V"}}]))
    store.create_job(make_job("b"))
    store.update_status("a", JobStatus(last_run=datetime(2026, 1, 1, tzinfo=UTC), last_run_tasks=[]))
    assert store.get_job_document("a") == store.get_job("a").to_document()
    assert store.list_job_documents(skip=0, count=10) == [job.to_document() for job in store.list_jobs()]
    with pytest.raises(JobNotFoundError):
        store.get_job_document("nope")


def test_verify_passes_on_a_reachable_store(store: Store) -> None:
    store.verify()


def test_jobs_are_counted_by_creator_and_keep_it_through_updates(store: JobStore) -> None:
    store.create_job(make_job("a", createdBy="alice"))
    store.create_job(make_job("b", createdBy="alice"))
    store.create_job(make_job("c", createdBy="bob"))
    store.create_job(make_job("d"))  # made before creators were recorded
    store.update_job("a", lambda job: apply_update(job, JobUpdate(task_count=3)))
    assert store.get_job("a").created_by == "alice"
    assert (store.count_jobs_created_by("alice"), store.count_jobs_created_by("bob")) == (2, 1)
    assert store.count_jobs_created_by("carol") == 0
    store.delete_job("b")
    assert store.count_jobs_created_by("alice") == 1
