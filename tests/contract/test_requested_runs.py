"""Requested runs (manual, backfill), retries waiting for the leader and reading one run: the
run-log contract behind run-now, backfill and retries, run against every store."""

from __future__ import annotations

from datetime import timedelta

import pytest

from common.errors import LeaseLostError, RunNotFoundError
from common.models import Run
from common.store.base import Store
from tests.contract.test_leases import lead
from tests.contract.test_run_log import T0, run


def requested(at_offset: int = 0, **fields: object) -> Run:
    return Run.model_validate(
        {
            "jobId": "j",
            "scheduledFor": T0 + timedelta(seconds=at_offset),
            "status": "requested",
            "replica": "webapi",
            "token": 0,
            "trigger": "manual",
            **fields,
        }
    )


def test_request_is_create_if_absent_per_time(store: Store) -> None:
    first, second = store.request_runs([requested(0, principal="alice"), requested(1)])
    assert (first.principal, second.scheduled_for) == ("alice", T0 + timedelta(seconds=1))
    (again,) = store.request_runs([requested(0, principal="bob")])
    assert again.principal == "alice"  # the time had a run: it is kept, not repeated
    assert len(store.list_runs("j")) == 2


def test_idempotency_key_returns_the_first_run(store: Store) -> None:
    (first,) = store.request_runs([requested(0, idempotencyKey="k1")])
    (retried,) = store.request_runs([requested(5, idempotencyKey="k1")])
    assert retried.scheduled_for == first.scheduled_for
    (other,) = store.request_runs([requested(5, idempotencyKey="k2")])
    assert other.scheduled_for == T0 + timedelta(seconds=5)
    assert len(store.list_runs("j")) == 2


def test_get_run(store: Store) -> None:
    store.request_runs([requested(0)])
    assert store.get_run("j", T0).status == "requested"
    with pytest.raises(RunNotFoundError):
        store.get_run("j", T0 + timedelta(seconds=9))


def test_pending_runs_are_requested_and_retrying_ones_oldest_first(store: Store) -> None:
    lease = lead(store)
    store.request_runs([requested(3), requested(1)])
    scheduled = run(lease, at=T0 + timedelta(seconds=2))
    assert store.claim_run(scheduled, lease)
    store.finish_run(scheduled.model_copy(update={"status": "retrying"}))
    done = run(lease, at=T0 + timedelta(seconds=4))
    assert store.claim_run(done, lease)
    store.finish_run(done.model_copy(update={"status": "launched"}))
    pending = store.pending_runs()
    assert [(p.scheduled_for - T0).seconds for p in pending] == [1, 2, 3]
    assert [p.status for p in pending] == ["requested", "retrying", "requested"]


def test_reclaim_moves_a_run_once_and_is_fenced(store: Store) -> None:
    lease = lead(store)
    store.request_runs([requested(0)])
    claimed = requested(0).model_copy(update={"status": "claimed", "replica": "a", "token": lease.token})
    assert store.reclaim_run(claimed, lease, expect="requested") is True
    assert store.reclaim_run(claimed, lease, expect="requested") is False
    stored = store.get_run("j", T0)
    assert (stored.status, stored.token, stored.trigger) == ("claimed", lease.token, "manual")
    assert store.pending_runs() == []
    store.release_lease(lease)
    with pytest.raises(LeaseLostError):
        store.reclaim_run(claimed, lease, expect="claimed")


def test_prune_keeps_runs_waiting_to_launch(store: Store) -> None:
    lease = lead(store)
    store.request_runs([requested(0), requested(1)])  # a backfill's old fire times
    for second in range(10, 14):
        store.claim_run(run(lease, at=T0 + timedelta(seconds=second)), lease)
    assert store.prune_runs("j", keep=2) == 2
    assert sorted((r.scheduled_for - T0).seconds for r in store.list_runs("j", count=100)) == [0, 1, 12, 13]
