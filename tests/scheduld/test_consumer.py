"""The ops-queue consumer against a real SQS queue (moto server): every message of a batch is
handled and its outcome reported; waits come only between receives, capped at the visibility
timeout.

Two faults are injected in-process, since no server here can produce them on cue: a SQLite store
that is unavailable for one job id, and an SQS bus whose first receives fail. Everything else is
the real store, the real queue and the real daemon threads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Iterator
from typing import Any

import pytest

from common.bus.base import ReceivedMessage
from common.bus.sqs import SQSEventBus
from common.config import RetrySettings, Settings, SQLiteSettings
from common.errors import BusUnavailableError, StoreUnavailableError
from common.models import ChangeEvent, ChangeOp, Job
from common.store.sqlite import SQLiteJobStore
from scheduld.daemon import Daemon
from scheduld.executor import TaskLauncher
from scheduld.triggers import TriggerRegistry
from tests.e2e.conftest import eventually
from tests.scheduld.conftest import job


class UnavailableFor(SQLiteJobStore):
    """SQLite, but reads of the jobs in ``failing`` raise StoreUnavailableError."""

    failing: set[str]

    def get_job(self, job_id: str) -> Job:
        if job_id in self.failing:
            raise StoreUnavailableError(f"injected outage for {job_id}")
        return super().get_job(job_id)

    def get_jobs(self, job_ids: Collection[str]) -> dict[str, Job]:
        """A read of several jobs fails if one of them cannot be read."""
        for job_id in job_ids:
            if job_id in self.failing:
                raise StoreUnavailableError(f"injected outage for {job_id}")
        return super().get_jobs(job_ids)


class FailingReceives(SQSEventBus):
    """The real bus, whose first ``failures`` receives raise BusUnavailableError."""

    failures = 0
    calls: list[float]

    def receive(self, *, max_messages: int = 10, wait_seconds: float | None = None) -> list[ReceivedMessage]:
        self.calls.append(time.monotonic())
        if len(self.calls) <= self.failures:
            raise BusUnavailableError("injected SQS outage")
        return super().receive(max_messages=max_messages, wait_seconds=wait_seconds)


@pytest.fixture
def store(tmp_path: Any) -> Iterator[UnavailableFor]:
    instance = UnavailableFor(SQLiteSettings(path=tmp_path / "jobs.db"))
    instance.failing = set()
    yield instance
    instance.close()


def _daemon(
    settings: Settings,
    store: SQLiteJobStore,
    bus: SQSEventBus,
    launcher: TaskLauncher,
    triggers: TriggerRegistry,
) -> Daemon:
    """A leading daemon that learns of changes from the queue alone (no reconcile meanwhile)."""
    quiet = settings.scheduler.model_copy(update={"reconcile_interval_seconds": 600})
    settings = settings.model_copy(update={"scheduler": quiet})
    instance = Daemon(settings, store=store, bus=bus, launcher=launcher, triggers=triggers)
    instance.start()
    assert instance.loaded.wait(10)
    return instance


def test_a_failed_message_does_not_hold_up_the_rest_of_its_batch(
    daemon_settings: Settings,
    store: UnavailableFor,
    sqs_client: Any,
    launcher: TaskLauncher,
    triggers: TriggerRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # a first wait of 3 s: sleeping after the failed message would hold the others that long
    settings = daemon_settings.model_copy(update={"retry": RetrySettings(first_wait_seconds=3)})
    bus = SQSEventBus.from_settings(settings.sqs, client=sqs_client)
    for job_id in ("broken", "a", "b", "c"):
        store.create_job(job(job_id))
    store.failing.add("broken")
    instance = _daemon(settings, store, bus, launcher, triggers)
    try:
        for job_id in ("a", "b", "c"):
            instance.schedule.remove(job_id)
        with caplog.at_level(logging.WARNING, logger="scheduld.daemon"):
            started = time.monotonic()
            for job_id in ("broken", "a", "b", "c"):
                bus.publish(ChangeEvent(op="modify", job_id=job_id))
            applied = {"a", "b", "c"}
            eventually(lambda: applied <= instance.schedule.scheduled_ids(), timeout=10, what="applied")
            assert time.monotonic() - started < 2.5
            eventually(lambda: "1 failed" in caplog.text or None, timeout=5, what="the batch's outcome")
        assert "applied" in caplog.text and "to be delivered again" in caplog.text
        store.failing.clear()  # the outage ends: SQS delivers the failed message again
        eventually(lambda: bus.receive(wait_seconds=0) == [] or None, timeout=15, what="queue drained")
    finally:
        instance.stop(timeout=5)
        bus.close()


def test_backoff_between_receives_grows_and_stops_at_the_visibility_timeout(
    daemon_settings: Settings,
    store: UnavailableFor,
    sqs_client: Any,
    launcher: TaskLauncher,
    triggers: TriggerRegistry,
) -> None:
    sqs = daemon_settings.sqs.model_copy(update={"visibility_timeout_seconds": 1})
    retry = RetrySettings(first_wait_seconds=0.1, max_wait_seconds=30)
    settings = daemon_settings.model_copy(update={"sqs": sqs, "retry": retry})
    bus = FailingReceives.from_settings(settings.sqs, client=sqs_client)
    assert isinstance(bus, FailingReceives)
    bus.calls, bus.failures = [], 8
    store.create_job(job("later", suspended=True))
    instance = _daemon(settings, store, bus, launcher, triggers)
    try:
        instance.schedule.remove("later")
        eventually(lambda: len(bus.calls) > bus.failures or None, timeout=15, what="SQS back")
        gaps = [b - a for a, b in zip(bus.calls, bus.calls[1 : bus.failures + 1], strict=False)]
        assert gaps[0] < 0.5  # the first wait is short
        assert max(gaps) >= 0.7  # waits grew ...
        assert max(gaps) <= 1.0 + 0.3  # ... but never past the visibility timeout (1 s)
        bus.publish(ChangeEvent(op="modify", job_id="later"))
        eventually(lambda: "later" in instance.schedule.scheduled_ids(), timeout=10, what="consumed again")
    finally:
        instance.stop(timeout=5)
        bus.close()


def test_a_batch_reads_the_jobs_it_names_together(
    daemon_settings: Settings,
    store: UnavailableFor,
    sqs_client: Any,
    launcher: TaskLauncher,
    triggers: TriggerRegistry,
) -> None:
    """One store read for a batch's events, not one per event: a job added, one changed and
    one deleted (stored before, now gone) all end as the store says."""
    bus = SQSEventBus.from_settings(daemon_settings.sqs, client=sqs_client)
    for job_id in ("changed", "deleted"):
        store.create_job(job(job_id))
    instance = _daemon(daemon_settings, store, bus, launcher, triggers)
    reads: list[str] = []
    single = store.get_job
    store.get_job = lambda job_id: reads.append(job_id) or single(job_id)  # type: ignore[method-assign]
    try:
        store.create_job(job("added"))
        store.update_job("changed", lambda current: current.model_copy(update={"schedule": "0 0 1"}))
        store.delete_job("deleted")
        for op, job_id in OPS:
            bus.publish(ChangeEvent(op=op, job_id=job_id))
        eventually(
            lambda: (
                instance.schedule.scheduled_ids() == {"added", "changed"}
                and instance.schedule.next_fire_time("changed").hour == 1
            ),  # type: ignore[union-attr]
            timeout=10,
            what="the batch applied",
        )
        assert reads == []  # no read of its own for any event
    finally:
        instance.stop(timeout=5)
        bus.close()


OPS: list[tuple[ChangeOp, str]] = [("add", "added"), ("modify", "changed"), ("remove", "deleted")]
