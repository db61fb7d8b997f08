"""The daemon against a real SQS queue (moto server) and a SQLite store: events, reconcile,
poison messages, and firing through the whole loop."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from common.bus.sqs import SQSEventBus
from common.config import ECSSettings, Settings
from common.models import ChangeEvent, JobUpdate, apply_update
from common.store.base import Store
from scheduld.daemon import Daemon
from scheduld.executor import TaskLauncher
from scheduld.triggers import TriggerRegistry
from tests.e2e.conftest import eventually
from tests.scheduld.conftest import RecordingECS, job, running_tasks


@pytest.fixture
def sqs_bus(daemon_settings: Settings, sqs_client: Any) -> SQSEventBus:
    return SQSEventBus.from_settings(daemon_settings.sqs, client=sqs_client)


@pytest.fixture
def unstarted(
    daemon_settings: Settings,
    sqlite_store: Store,
    sqs_bus: SQSEventBus,
    launcher: TaskLauncher,
    triggers: TriggerRegistry,
) -> Daemon:
    """A daemon on the test's store, queue and ECS, not started yet."""
    return Daemon(daemon_settings, store=sqlite_store, bus=sqs_bus, launcher=launcher, triggers=triggers)


@pytest.fixture
def daemon(unstarted: Daemon) -> Iterator[Daemon]:
    instance = unstarted
    instance.start()
    assert instance.loaded.wait(10)
    yield instance
    instance.stop(timeout=5)


def test_startup_loads_every_stored_job(unstarted: Daemon, sqlite_store: Store) -> None:
    for n in range(5):
        sqlite_store.create_job(job(f"stored{n}"))
    sqlite_store.create_job(job("paused", suspended=True))
    instance = unstarted
    instance.start()
    try:
        assert instance.loaded.wait(10)
        assert instance.schedule.scheduled_ids() == {f"stored{n}" for n in range(5)} | {"paused"}
        assert instance.schedule.next_fire_time("paused") is None
        # estimatedNextRun is written in the background
        eventually(lambda: sqlite_store.get_job("stored0").estimated_next_run, timeout=5, what="estimate")
        assert sqlite_store.get_job("stored0").estimated_next_run == instance.schedule.next_fire_time(
            "stored0"
        )
        assert sqlite_store.get_job("paused").estimated_next_run is None
    finally:
        instance.stop(timeout=5)


def test_the_load_runs_without_collections_and_keeps_what_it_loaded_out_of_their_way(
    unstarted: Daemon, sqlite_store: Store
) -> None:
    """Loading thousands of jobs with the cyclic collector on sets off collections that
    traverse everything loaded so far (scheduld/collector.py); what was loaded is frozen out
    of the collector's sight until the replica steps down."""
    for n in range(1500):
        sqlite_store.create_job(job(f"load{n:04d}"))
    collections: list[int] = []

    def on_collection(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and threading.current_thread().name == "scheduld-activate":
            collections.append(info["generation"])

    instance = unstarted
    frozen_before = gc.get_freeze_count()
    gc.callbacks.append(on_collection)
    try:
        instance.start()
        assert instance.loaded.wait(20)
        assert len(instance.schedule.scheduled_ids()) == 1500
        assert collections == []
        assert gc.isenabled()
        assert gc.get_freeze_count() > frozen_before + 1500  # the jobs and their parts
    finally:
        gc.callbacks.remove(on_collection)
        instance.stop(timeout=5)
    assert gc.get_freeze_count() == 0  # stepped down: the collector sees everything again


def test_events_add_modify_remove(daemon: Daemon, sqlite_store: Store, sqs_bus: SQSEventBus) -> None:
    sqlite_store.create_job(job("evented", schedule="0 0 0"))
    sqs_bus.publish(ChangeEvent(op="add", job_id="evented"))
    eventually(lambda: "evented" in daemon.schedule.scheduled_ids(), timeout=10, what="add applied")
    before = daemon.schedule.next_fire_time("evented")

    sqlite_store.update_job("evented", lambda j: apply_update(j, JobUpdate(schedule="0 30 0")))
    sqs_bus.publish(ChangeEvent(op="modify", job_id="evented"))
    eventually(lambda: daemon.schedule.next_fire_time("evented") != before, timeout=10, what="modify applied")
    assert daemon.schedule.next_fire_time("evented").minute == 30  # type: ignore[union-attr]

    sqlite_store.delete_job("evented")
    sqs_bus.publish(ChangeEvent(op="remove", job_id="evented"))
    eventually(lambda: "evented" not in daemon.schedule.scheduled_ids(), timeout=10, what="remove applied")
    assert sqs_bus.receive(wait_seconds=0) == []  # every message was acked


def test_late_or_duplicate_events_follow_the_store(
    daemon: Daemon, sqlite_store: Store, sqs_bus: SQSEventBus
) -> None:
    sqlite_store.create_job(job("truth"))
    sqs_bus.publish(ChangeEvent(op="remove", job_id="truth"))  # stale: the job exists
    sqs_bus.publish(ChangeEvent(op="add", job_id="truth"))
    sqs_bus.publish(ChangeEvent(op="add", job_id="truth"))
    eventually(lambda: "truth" in daemon.schedule.scheduled_ids(), timeout=10, what="job scheduled")
    sqs_bus.publish(ChangeEvent(op="add", job_id="never-stored"))  # late add of a deleted job
    eventually(lambda: sqs_bus.receive(wait_seconds=0) == [], timeout=10, what="queue drained")
    assert "never-stored" not in daemon.schedule.scheduled_ids()


def test_reconcile_heals_a_lost_message(daemon: Daemon, sqlite_store: Store) -> None:
    sqlite_store.create_job(job("silent"))  # no event published
    eventually(lambda: "silent" in daemon.schedule.scheduled_ids(), timeout=10, what="reconcile add")
    sqlite_store.delete_job("silent")
    eventually(lambda: "silent" not in daemon.schedule.scheduled_ids(), timeout=10, what="reconcile remove")


def test_poison_message_goes_to_dead_letter_queue(
    daemon: Daemon, sqs_bus: SQSEventBus, sqs_client: Any
) -> None:
    sqs_client.send_message(QueueUrl=sqs_bus.queue_url, MessageBody="{not json")
    sqs_client.send_message(QueueUrl=sqs_bus.queue_url, MessageBody='{"op": "explode", "jobId": "x"}')
    dead = eventually(lambda: sqs_bus.dead_letters(max_messages=10) or None, timeout=10, what="dead letters")
    eventually(lambda: len(sqs_bus.dead_letters(max_messages=10)) == 2 or None, timeout=10, what="both dead")
    assert all(message.error for message in dead)
    assert sqs_bus.receive(wait_seconds=0) == []


def test_job_fires_through_the_daemon(
    daemon: Daemon, sqlite_store: Store, sqs_bus: SQSEventBus, ecs_client: Any, cluster: str
) -> None:
    sqlite_store.create_job(job("every-second", schedule="*", taskCount=2))
    sqs_bus.publish(ChangeEvent(op="add", job_id="every-second"))
    eventually(lambda: len(running_tasks(ecs_client, cluster)) == 2 or None, timeout=10, what="tasks")
    stored = eventually(lambda: sqlite_store.get_job("every-second").last_run_tasks, timeout=5, what="status")
    assert len(stored) == 2
    final = sqlite_store.get_job("every-second")
    assert final.last_run is not None and final.estimated_next_run is not None
    assert final.estimated_next_run > final.last_run


def _slow_launch_daemon(
    settings: Settings, store: Store, bus: SQSEventBus, endpoint: RecordingECS, triggers: TriggerRegistry
) -> Daemon:
    """A daemon whose one every-second job is under way in a RunTask call that takes a while.

    The recording endpoint stands in for ECS so a launch can be held mid-call (moto answers
    at once); the runs table tells whether that launch was finished and recorded.
    """
    store.create_job(job("slow", schedule="*"))
    launcher = TaskLauncher(endpoint.client(), ECSSettings(cluster="c"))
    instance = Daemon(settings, store=store, bus=bus, launcher=launcher, triggers=triggers)
    instance.start()
    eventually(lambda: endpoint.run_task_calls(), timeout=10, what="a RunTask call under way")
    return instance


def test_stop_lets_a_launch_under_way_finish(
    daemon_settings: Settings,
    sqlite_store: Store,
    sqs_bus: SQSEventBus,
    recording_ecs: RecordingECS,
    triggers: TriggerRegistry,
) -> None:
    recording_ecs.run_task_delay = 1.0
    instance = _slow_launch_daemon(daemon_settings, sqlite_store, sqs_bus, recording_ecs, triggers)
    instance.stop(timeout=5)
    (run,) = sqlite_store.list_runs("slow")  # no fire started after stop
    assert (run.status, run.started) == ("launched", 1)
    stored = sqlite_store.get_job("slow")
    assert stored.last_run == run.scheduled_for and len(stored.last_run_tasks or []) == 1
    assert len(recording_ecs.run_task_calls()) == 1


def test_stop_is_bounded_when_a_launch_hangs(
    daemon_settings: Settings,
    sqlite_store: Store,
    sqs_bus: SQSEventBus,
    recording_ecs: RecordingECS,
    triggers: TriggerRegistry,
) -> None:
    recording_ecs.run_task_delay = 4.0
    instance = _slow_launch_daemon(daemon_settings, sqlite_store, sqs_bus, recording_ecs, triggers)
    started = time.monotonic()
    instance.stop(timeout=0.5)
    assert time.monotonic() - started < 3.5  # the 0.5 s wait plus the loops' own exits
    assert [r.status for r in sqlite_store.list_runs("slow")] == ["claimed"]  # still launching
    # the abandoned launch still completes and is recorded (before the store closes)
    eventually(lambda: [r for r in sqlite_store.list_runs("slow") if r.status != "claimed"], timeout=10)
