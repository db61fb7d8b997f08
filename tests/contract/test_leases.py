"""The LeaseStore contract: exclusive, renewable, fenced leadership leases, run unchanged
against every backend (conftest ``store``)."""

from __future__ import annotations

import time

from common.models import Lease
from common.store.base import LeaseStore


def lead(store: LeaseStore, holder: str = "a", ttl: float = 30) -> Lease:
    lease = store.acquire_lease("scheduld", holder=holder, ttl=ttl)
    assert lease is not None
    return lease


def test_lease_is_exclusive_renewable_and_fenced(store: LeaseStore) -> None:
    first = lead(store, "a")
    assert store.acquire_lease("scheduld", holder="b", ttl=30) is None
    renewed = lead(store, "a")
    assert renewed.token == first.token and renewed.expires_at >= first.expires_at
    store.release_lease(renewed)
    taken = lead(store, "b")
    assert taken.token > first.token  # a new term has a higher fencing token
    assert store.acquire_lease("scheduld", holder="a", ttl=30) is None


def test_expired_lease_is_taken_over(store: LeaseStore) -> None:
    old = lead(store, "a", ttl=0.2)
    time.sleep(0.3)
    new = lead(store, "b")
    assert new.token == old.token + 1
