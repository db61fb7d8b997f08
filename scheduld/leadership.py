"""Leadership among scheduld replicas: one leader at a time, through a lease in the store.

The holder renews every quarter of the lease's lifetime, on its own thread (never behind the
fire pool: the store lets lease writes pass queued fires), and counts itself leader only
until two thirds of it have passed since its last successful renewal, so a leader cut off
from the store stops firing well before its lease can expire and a standby take over.
Standbys bid every eighth of the lifetime, so with the default 2 s lease a standby takes
over within about 2.25 s of the leader's death. Every claim is also checked against the
lease's fencing token in the store, so a stale leader cannot claim even if its clock or
scheduling misbehaves.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

from common.errors import SchedulerError
from common.models import Lease
from common.store.base import LeaseStore
from scheduld import metrics

logger = logging.getLogger(__name__)

LEASE_NAME = "scheduld"


def replica_id() -> str:
    """host:pid:random — unique per process, readable in logs and run records."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Leadership:
    def __init__(
        self,
        store: LeaseStore,
        *,
        holder: str,
        ttl: float,
        on_elected: Callable[[Lease], None],
        on_deposed: Callable[[], None],
    ) -> None:
        self._store = store
        self.holder = holder
        self._ttl = ttl
        self._on_elected = on_elected
        self._on_deposed = on_deposed
        self._lease: Lease | None = None
        self._valid_until = 0.0
        self._failing = False  # the store refuses: log the first failure, not every bid
        self._lock = threading.Lock()
        # for health: when the lease was last acquired or renewed (monotonic), and whether the
        # last attempt reached the store at all (a standby is healthy only if it can take over)
        self.renewed_at: float | None = None
        self.store_reachable = False

    def current(self) -> Lease | None:
        """The lease while this replica may act as leader, else None."""
        with self._lock:
            if self._lease is not None and time.monotonic() < self._valid_until:
                return self._lease
            return None

    def run(self, stop: threading.Event) -> None:
        """Acquire/renew until ``stop``; then release, so a standby takes over at once."""
        while not stop.is_set():
            self.tick()
            stop.wait(self._ttl / 4 if self._lease is not None else self._ttl / 8)
        lease = self._lease
        if lease is not None:
            self._step_down("stopping")
            try:
                self._store.release_lease(lease)
            except SchedulerError as exc:
                logger.warning("could not release the lease: %s", exc.message)

    def tick(self) -> None:
        """One acquire-or-renew attempt, and the state change it implies."""
        asked = time.monotonic()
        try:
            lease = self._store.acquire_lease(LEASE_NAME, holder=self.holder, ttl=self._ttl)
        except SchedulerError as exc:
            metrics.LEASE_RENEW_FAILURES.inc()
            self.store_reachable = False
            level = logging.DEBUG if self._failing else logging.WARNING
            logger.log(level, "lease renewal failed: %s", exc.message)
            self._failing = True
            lease = None
            if self._lease is not None and time.monotonic() < self._valid_until:
                return  # keep leading until the safety margin runs out
        else:
            self.store_reachable = True
            if self._failing:
                logger.info("replica %s reaches the lease again", self.holder)
            self._failing = False
        if lease is None:
            if self._lease is not None:
                self._step_down("lease lost")
            return
        elected = self._lease is None or lease.token != self._lease.token
        if elected and self._lease is not None:
            self._step_down("new term")
        with self._lock:
            self._lease = lease
            self._valid_until = asked + self._ttl * 2 / 3
            self.renewed_at = asked
        if elected:
            metrics.LEADERSHIP_CHANGES.labels(change="elected").inc()
            logger.info("replica %s is leader (fencing token %d)", self.holder, lease.token)
            self._on_elected(lease)

    def _step_down(self, why: str) -> None:
        with self._lock:
            lease, self._lease = self._lease, None
        if lease is not None:
            level = logging.INFO if why == "stopping" else logging.WARNING  # planned vs lost
            metrics.LEADERSHIP_CHANGES.labels(change="deposed").inc()
            logger.log(level, "replica %s stops leading (%s)", self.holder, why)
            self._on_deposed()
