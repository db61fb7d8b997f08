"""Pacing of backfill and catch-up runs: spread at ``scheduler.backfill_runs_per_second`` and
kept inside ``quotas.tasks_per_minute``.

A backfill (or a ``catchUpPolicy: all`` catch-up) can request a thousand runs at once. Launched
back to back they would take the whole launch quota from the jobs firing on schedule, and the
ones beyond it would be recorded ``throttled``: lost to the user who asked for them. So such a
run is only admitted when its slot has come and the quota has room for its tasks; otherwise it
stays ``requested`` in the store and the leader's pending loop offers it again (it survives a
failover there too). Manual runs ("run now") and scheduled fires are not paced.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from common.models import Run

PACED_TRIGGERS = frozenset({"backfill", "schedule"})  # "schedule": a caught-up missed fire

QUOTA_RECHECK_SECONDS = 1.0


def paced(run: Run) -> bool:
    """Whether this requested run waits for its turn."""
    return run.trigger in PACED_TRIGGERS


class Pacer:
    """One slot every ``1 / per_second`` seconds for all paced runs together (no burst)."""

    def __init__(
        self,
        per_second: float,
        *,
        room_for: Callable[[int], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._interval = 1.0 / per_second if per_second > 0 else 0.0
        self._room_for = room_for
        self._clock = clock
        self._next = 0.0
        self._retry_at = 0.0
        self._lock = threading.Lock()

    def admit(self, run: Run, tasks: int) -> bool:
        """Take the next slot for ``run`` (starting ``tasks`` tasks) if it is due and the quota
        has room; False leaves the run waiting. Runs that are not paced are always admitted."""
        if not paced(run):
            return True
        with self._lock:
            now = self._clock()
            if now < self._next:
                self._retry_at = self._next
                return False
            if self._room_for is not None and tasks > 0 and not self._room_for(tasks):
                self._retry_at = now + QUOTA_RECHECK_SECONDS
                return False
            self._next = now + self._interval
            return True

    def retry_in(self) -> float:
        """Seconds until a refused run is worth offering again."""
        with self._lock:
            return max(0.0, self._retry_at - self._clock())
