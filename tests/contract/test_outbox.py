"""The Outbox contract: every job write and run request records its change event with itself,
and relays claim, send and remove them. Run unchanged against every backend (conftest ``store``)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from common.errors import InvalidJobError, JobExistsError, JobNotFoundError
from common.models import Job
from common.store.base import Store
from tests.contract.test_jobs import make_job
from tests.contract.test_requested_runs import requested


def drain(store: Store) -> list[tuple[str, str]]:
    """Every waiting event as (op, job id), oldest first; removed as a relay would."""
    entries = store.claim_events(limit=1000)
    store.remove_events([entry.id for entry in entries])
    return [(entry.event.op, entry.event.job_id) for entry in entries]


def test_every_job_write_records_its_event_in_order(store: Store) -> None:
    store.create_job(make_job("a"))
    store.update_job("a", lambda job: job.model_copy(update={"task_count": 2}))
    store.create_job(make_job("b"))
    store.delete_job("a")
    assert drain(store) == [("add", "a"), ("modify", "a"), ("add", "b"), ("remove", "a")]
    assert drain(store) == []


def test_a_failed_write_records_no_event(store: Store) -> None:
    store.create_job(make_job("a"))
    drain(store)

    def refuse(job: Job) -> Job:
        raise InvalidJobError({"taskCount": "no"})

    with pytest.raises(JobExistsError):
        store.create_job(make_job("a"))
    with pytest.raises(JobNotFoundError):
        store.update_job("nope", lambda job: job)
    with pytest.raises(InvalidJobError):
        store.update_job("a", refuse)
    with pytest.raises(JobNotFoundError):
        store.delete_job("nope")
    assert drain(store) == []


def test_run_requests_record_one_run_event_per_job(store: Store) -> None:
    store.request_runs([requested(0), requested(1), requested(2, jobId="other")])
    assert sorted(drain(store)) == [("run", "j"), ("run", "other")]


def test_a_claim_hides_events_until_it_expires(store: Store) -> None:
    store.create_job(make_job("a"))
    store.create_job(make_job("b"))
    first = store.claim_events(limit=1, claim_seconds=0.5)
    assert [entry.event.job_id for entry in first] == ["a"]
    second = store.claim_events(limit=10, claim_seconds=30)
    assert [entry.event.job_id for entry in second] == ["b"]
    assert store.claim_events(limit=10) == []
    time.sleep(0.6)  # the first relay died without sending "a": it is claimed again
    (again,) = store.claim_events(limit=10)
    assert (again.event, again.recorded_at) == (first[0].event, first[0].recorded_at)


def test_removed_events_are_gone_and_unknown_ids_are_ignored(store: Store) -> None:
    store.create_job(make_job("a"))
    (entry,) = store.claim_events(limit=10, claim_seconds=0.1)
    store.remove_events([entry.id])
    store.remove_events([entry.id])  # a second relay that also sent it
    time.sleep(0.2)
    assert store.claim_events(limit=10) == []


def test_a_removal_under_a_lost_claim_leaves_newer_events(store: Store) -> None:
    """A relay that stalled past its claim and then removes what it sent must not remove an
    event recorded since (SQLite may give it the same row id)."""
    store.create_job(make_job("a"))
    (stale,) = store.claim_events(limit=10, claim_seconds=0.1)
    time.sleep(0.2)
    (taken,) = store.claim_events(limit=10, claim_seconds=30)  # another relay
    store.remove_events([taken.id])  # sent and removed
    store.create_job(make_job("b"))
    store.remove_events([stale.id])  # the stalled relay wakes up
    assert drain(store) == [("add", "b")]


def test_backlog_counts_events_and_dates_the_oldest(store: Store) -> None:
    assert store.outbox_backlog() == (0, None)
    before = datetime.now(UTC) - timedelta(seconds=1)
    store.create_job(make_job("a"))
    store.create_job(make_job("b"))
    count, oldest = store.outbox_backlog()
    assert count == 2
    assert oldest is not None and before <= oldest <= datetime.now(UTC)
    drain(store)
    assert store.outbox_backlog() == (0, None)


def test_concurrent_relays_never_claim_one_event_twice(store: Store) -> None:
    for n in range(30):
        store.create_job(make_job(f"j{n:02d}"))
    claimed: list[str] = []
    lock = threading.Lock()

    def relay() -> None:
        while entries := store.claim_events(limit=4, claim_seconds=60):
            with lock:
                claimed.extend(entry.id for entry in entries)

    threads = [threading.Thread(target=relay) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(claimed) == len(set(claimed)) == 30


def test_an_event_is_never_claimed_before_its_write_can_be_read(store: Store) -> None:
    """A relay that claims while a write is in progress either does not see its event yet
    (Elasticsearch: hidden until the write is done) or waits for the write (SQLite: one
    transaction): whoever gets the event can read the change it announces."""
    store.create_job(make_job("a"))
    drain(store)
    seen: list[tuple[list[str], int]] = []
    relays: list[threading.Thread] = []

    def claim_and_read() -> None:
        entries = store.claim_events(limit=10, claim_seconds=60)
        seen.append(([entry.event.op for entry in entries], store.get_job("a").task_count))

    def change(job: Job) -> Job:
        relay = threading.Thread(target=claim_and_read)
        relay.start()
        relay.join(0.5)  # SQLite's claim waits for this transaction; let it, after the write
        relays.append(relay)
        return job.model_copy(update={"task_count": 2})

    store.update_job("a", change)
    for relay in relays:
        relay.join()
    assert seen, "the relay never answered"
    for ops, task_count in seen:
        if "modify" in ops:
            assert task_count == 2
    claimed_during_write = any("modify" in ops for ops, _ in seen)
    assert claimed_during_write or [op for op, _ in drain(store)] == ["modify"]
