"""Herds (scheduld/herd.py): the fires handed over together are claimed, launched and
recorded as a batch against moto's ECS, each job keeping its own outcome.

To make a batch certain, the first fire's claim is held at a gate until every other fire was
handed over: the store's real ``claim_runs`` is wrapped (a spy that waits, then calls it), so
the others gather into the next batch whatever the thread timing.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY

from common.models import Job, Lease, Run
from common.store.base import Store
from scheduld import collector, herd
from scheduld.collector import CollectorPause
from scheduld.executor import LaunchResult, TaskLauncher
from scheduld.triggers import TriggerRegistry
from tests.scheduld.conftest import job, make_firing, running_tasks


def fires(outcome: str) -> float:
    return REGISTRY.get_sample_value("ecs_scheduler_fires_total", {"outcome": outcome}) or 0.0


class ClaimGate:
    """Holds the first ``claim_runs`` until ``open``; records the size of every claim."""

    def __init__(self, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sizes: list[int] = []
        self.held = threading.Event()
        self._open = threading.Event()
        real: Callable[[Sequence[Run], Lease], list[bool]] = store.claim_runs

        def claim_runs(runs: Sequence[Run], lease: Lease) -> list[bool]:
            first = not self.sizes
            self.sizes.append(len(runs))
            if first:
                self.held.set()
                assert self._open.wait(10), "the gate was never opened"
            return real(runs, lease)

        monkeypatch.setattr(store, "claim_runs", claim_runs)

    def open(self) -> None:
        self._open.set()


def test_a_herd_is_claimed_in_one_batch_and_each_job_keeps_its_outcome(
    sqlite_store: Store,
    launcher: TaskLauncher,
    triggers: TriggerRegistry,
    lease: Lease,
    ecs_client: Any,
    cluster: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    second = datetime.now(UTC).replace(microsecond=0)
    firing = make_firing(sqlite_store, launcher, triggers, lease)
    plain = [f"ok-{n}" for n in range(5)]
    for name in plain:
        sqlite_store.create_job(job(name))
    sqlite_store.create_job(job("busy", overlapPolicy="skip"))
    sqlite_store.create_job(job("replacing", overlapPolicy="replace"))
    sqlite_store.create_job(
        Job.model_validate({"id": "broken", "taskDefinition": "no-such-task", "schedule": "0"})
    )
    earlier = second - timedelta(minutes=1)
    firing("busy", earlier)  # its task still runs: the herd's fire starts none
    firing("replacing", earlier)  # its task is stopped, then another started: fired alone
    (replaced,) = sqlite_store.list_runs("replacing")[0].tasks
    before = {outcome: fires(outcome) for outcome in ("launched", "skipped", "failed")}

    gate = ClaimGate(sqlite_store, monkeypatch)
    firing.hand_off(plain[0], second)
    assert gate.held.wait(10)
    for name in [*plain[1:], "busy", "broken", "replacing"]:
        firing.hand_off(name, second)
    with caplog.at_level(logging.WARNING, logger="scheduld.herd"):
        firing.hand_off("ok-1", second + timedelta(seconds=1))  # its fire of `second` is under way
    assert "still under way" in caplog.text
    assert not gc.isenabled(), "the collector runs while fires are under way"
    gate.open()
    assert firing.drain(timeout=30)
    assert gc.isenabled(), "the collector stayed paused after the herd"

    assert 6 in gate.sizes  # ok-1…ok-4, busy and broken in one claim; replacing fired alone
    for name in plain:
        (run,) = sqlite_store.list_runs(name)
        assert (run.scheduled_for, run.status, run.started) == (second, "launched", 1), name
        assert sqlite_store.get_job(name).last_run == second
    assert sqlite_store.list_runs("busy")[0].status == "skipped"
    (failed,) = sqlite_store.list_runs("broken")
    assert failed.status == "failed" and failed.failures and failed.error
    newest = sqlite_store.list_runs("replacing")[0]
    assert (newest.scheduled_for, newest.status, newest.stopped) == (second, "launched", [replaced.task_id])
    assert fires("launched") - before["launched"] == 6
    assert fires("skipped") - before["skipped"] == 1
    assert fires("failed") - before["failed"] == 1
    live = {task["startedBy"] for task in running_tasks(ecs_client, cluster)}
    assert len(live) == 7  # one task for each ok-n, busy's first, replacing's new one


def test_a_herd_interrupted_by_a_lost_lease_launches_nothing_it_did_not_claim(
    sqlite_store: Store,
    launcher: TaskLauncher,
    triggers: TriggerRegistry,
    lease: Lease,
    ecs_client: Any,
    cluster: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    second = datetime.now(UTC).replace(microsecond=0)
    held = {"lease": lease}
    firing = make_firing(sqlite_store, launcher, triggers, lease, lease=lambda: held["lease"])
    names = [f"h-{n}" for n in range(5)]
    for name in names:
        sqlite_store.create_job(job(name))
    lost = fires("lease_lost")

    gate = ClaimGate(sqlite_store, monkeypatch)
    firing.hand_off(names[0], second)
    assert gate.held.wait(10)
    # another replica took over: this one's lease is stale from now on
    held["lease"] = lease.model_copy(update={"token": lease.token + 1})
    for name in names[1:]:
        firing.hand_off(name, second)
    gate.open()
    assert firing.drain(timeout=30)

    (first,) = sqlite_store.list_runs(names[0])  # claimed before the lease was lost
    assert first.status == "launched"
    assert all(sqlite_store.list_runs(name) == [] for name in names[1:])
    assert len(running_tasks(ecs_client, cluster)) == 1
    assert fires("lease_lost") - lost == len(names) - 1


def test_a_herd_leaves_no_cycle_for_the_garbage_collector(
    sqlite_store: Store,
    launcher: TaskLauncher,
    triggers: TriggerRegistry,
    lease: Lease,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The collector is paused during a herd: what a herd allocates must be freed by reference
    counts, or each herd leaves its fires' objects to a full collection."""
    monkeypatch.setattr(herd, "IDLE_SECONDS", 0.05)
    second = datetime.now(UTC).replace(microsecond=0)
    firing = make_firing(sqlite_store, launcher, triggers, lease)
    names = [f"c-{n}" for n in range(5)]
    for name in names:
        sqlite_store.create_job(job(name))
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for name in names:
            firing.hand_off(name, second)
        assert firing.drain(timeout=30)
        assert all(sqlite_store.list_runs(name)[0].status == "launched" for name in names)
        for thread in threading.enumerate():  # idle herd threads end, and their last turn with them
            if thread.name == "herd":
                thread.join(5)
        gc.collect()
        left = {type(thing).__name__ for thing in gc.garbage}
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert not left & {"_Launch", "Fire", "PendingLaunch", "LaunchResult", "Run", "Job"}, left


def test_a_batch_whose_launches_cannot_start_records_its_claimed_runs_failed(
    sqlite_store: Store,
    launcher: TaskLauncher,
    triggers: TriggerRegistry,
    lease: Lease,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A bug in starting the RunTask calls (here: a stand-in for TaskLauncher.start_launches
    that raises, as no real ECS answer can make it) leaves no claimed run behind."""
    second = datetime.now(UTC).replace(microsecond=0)
    firing = make_firing(sqlite_store, launcher, triggers, lease)
    names = [f"b-{n}" for n in range(3)]
    for name in names:
        sqlite_store.create_job(job(name))
    failed = fires("failed")

    def broken(launches: list[tuple[Job, int]], *, scheduled: datetime) -> list[LaunchResult]:
        raise RuntimeError("bug")

    monkeypatch.setattr(launcher, "start_launches", broken)
    with caplog.at_level(logging.ERROR, logger="scheduld.firing"):
        for name in names:
            firing.hand_off(name, second)
        assert firing.drain(timeout=30)
    assert "could not start" in caplog.text
    for name in names:
        (run,) = sqlite_store.list_runs(name)
        assert (run.status, run.started) == ("failed", 0), name
    assert fires("failed") - failed == len(names)


def test_the_collector_pause_ends_when_idle_and_never_outlasts_its_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pause = CollectorPause()
    assert gc.isenabled()
    try:
        pause.pause()
        assert not gc.isenabled()
        pause.resume(idle=True)
        assert gc.isenabled()

        monkeypatch.setattr(collector, "MAX_COLLECTOR_PAUSE_SECONDS", 0.0)
        pause.pause()
        assert not gc.isenabled()
        threading.Event().wait(0.01)
        pause.pause()  # a steady load: paused too long
        assert gc.isenabled()
        pause.pause()
        assert gc.isenabled(), "paused again before the herd was idle"
        pause.resume(idle=True)
        pause.pause()
        assert not gc.isenabled()
        pause.resume(idle=False)  # the herd thread ends with launches unanswered
        assert gc.isenabled()

        gc.disable()  # someone else's choice
        pause.pause()
        pause.resume(idle=True)
        assert not gc.isenabled()
    finally:
        gc.enable()
