"""The schedule: a thin wrapper over APScheduler 3.x's public API, the only scheduld module
that imports it (its internals are reached only through common/apscheduler_seams.py).

Deliberate settings: UTC; coalesce (missed fires collapse into one run); misfire grace from
config (APScheduler's default of 1 s would drop fires under load). The fire callback receives
the *scheduled* fire time, which becomes the job's ``lastRun``; it runs on the scheduler's own
thread and must return at once (it hands the fire over: scheduld/herd.py, which also keeps
one fire of a job at a time), so no thread pool stands between the two.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler

from common import schedule as schedule_syntax
from common.apscheduler_seams import FireTimeExecutor, current_run_time, presigned
from common.config import SchedulerSettings
from common.models import Job

logger = logging.getLogger(__name__)

FireCallback = Callable[[str, datetime], None]
"""Called on the scheduler's thread with (job id, scheduled fire time); returns at once."""


@dataclass(frozen=True)
class _Fingerprint:
    """What decides when a job fires; other edits (taskCount, overrides) need no reschedule."""

    timing: schedule_syntax.Timing
    suspended: bool
    deadline: int | None = None

    @classmethod
    def of(cls, job: Job) -> _Fingerprint:
        return cls(job.timing, bool(job.suspended), job.starting_deadline_seconds)


@dataclass(frozen=True)
class Scheduled:
    next_run: datetime | None


@functools.lru_cache(maxsize=65536)
def _trigger(timing: schedule_syntax.Timing) -> Any:
    """Jobs with the same timing share one (immutable) trigger, built once."""
    return timing.trigger()


@functools.lru_cache(maxsize=4096)
def _first_fire_after(timing: schedule_syntax.Timing, moment: datetime) -> datetime | None:
    """The first fire of ``timing`` strictly after ``moment``. Every fire of a job asks it
    from the job's last fire (a gap means missed fires), so a herd of jobs sharing their
    timing and last fire asks it once instead of once a job (a cron search: 14-24 µs)."""
    first: datetime | None = schedule_syntax.next_fire_time(_trigger(timing), moment)
    return first


class Schedule:
    """Which jobs fire when. Thread-safe; ``put`` is idempotent."""

    def __init__(self, settings: SchedulerSettings, on_fire: FireCallback) -> None:
        self._settings = settings
        self._grace = settings.misfire_grace_seconds
        self._on_fire = on_fire
        self._fingerprints: dict[str, _Fingerprint] = {}
        self._lock = threading.Lock()
        self._job_callable = presigned(self._fire)
        self._executor = FireTimeExecutor()
        self._scheduler = BackgroundScheduler(
            executors={"default": self._executor},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": max(1, math.ceil(settings.misfire_grace_seconds)),
            },
            timezone=UTC,
        )

    def fresh(self) -> Schedule:
        """An empty schedule with the same settings (after stepping down as leader)."""
        return Schedule(self._settings, self._on_fire)

    def start(self) -> None:
        self._scheduler.start()

    def shutdown(self, *, wait: bool) -> None:
        """Stop firing. A fire is handed over before the scheduler's thread moves on, so none
        is under way here once this returns, ``wait`` or not (the fires handed over are the
        herd's to finish: ``Firing.drain``)."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=wait)

    def put(self, job: Job, *, catch_up: bool = False) -> Scheduled | None:
        """Schedule ``job`` or apply its changes; None when nothing changed.

        With ``catch_up`` (startup), the first fire after ``lastRun`` is kept if it was missed
        by less than the misfire grace, so it runs once now; ``lastRun`` itself never re-fires.
        """
        fingerprint = _Fingerprint.of(job)
        with self._lock:
            if self._fingerprints.get(job.id) == fingerprint:
                return None
            trigger = _trigger(fingerprint.timing)
            # a job's own startingDeadlineSeconds may be longer than the global grace: its
            # late fires reach the firing code, which records them missed (scheduld/policies.py)
            grace = max(self._grace, job.starting_deadline_seconds or 0)
            next_run = (
                None if job.suspended else self._first_run(job, trigger, catch_up=catch_up, grace=grace)
            )
            self._scheduler.add_job(
                self._job_callable,
                trigger=trigger,
                args=[job.id],
                id=job.id,
                name=job.id,
                replace_existing=True,
                next_run_time=next_run,
                misfire_grace_time=max(1, math.ceil(grace)),
            )
            self._fingerprints[job.id] = fingerprint
        logger.debug("scheduled job %s: next fire %s", job.id, next_run or "never (suspended/ended)")
        return Scheduled(next_run)

    def remove(self, job_id: str) -> bool:
        """Drop a job; False if it was not scheduled."""
        with self._lock:
            self._fingerprints.pop(job_id, None)
            try:
                self._scheduler.remove_job(job_id)
            except JobLookupError:
                return False
        logger.info("unscheduled job %s", job_id)
        return True

    def scheduled_ids(self) -> set[str]:
        with self._lock:
            return set(self._fingerprints)

    def first_fire_after(self, job: Job, moment: datetime, until: datetime) -> datetime | None:
        """The job's first fire time after ``moment`` (None if none up to ``until``)."""
        first = _first_fire_after(job.timing, moment)
        return first if first is not None and first <= until else None

    def fires_due(self, moment: datetime) -> int:
        """How many fires were handed to workers for ``moment`` so far."""
        return self._executor.submitted(moment)

    def next_fire_time(self, job_id: str) -> datetime | None:
        job = self._scheduler.get_job(job_id)
        result: datetime | None = None if job is None else job.next_run_time
        return result

    def _first_run(self, job: Job, trigger: Any, *, catch_up: bool, grace: float) -> datetime | None:
        """The first fire time to schedule: from now, or with ``catch_up`` after ``lastRun``.

        Missed fires older than the grace are skipped (logged); those within it are handed to
        APScheduler from the earliest on, and it coalesces them into one run for the latest.
        Times are always asked "strictly after" (``schedule.next_fire_time``): CronTrigger's
        own previous-fire-time form starts from ``min(now, previous)`` and would re-fire a
        ``lastRun`` written by a replica whose clock runs ahead.
        """
        now = datetime.now(UTC)
        if not catch_up or job.last_run is None:
            return schedule_syntax.next_fire_time(trigger, now - timedelta(microseconds=1))
        missed = schedule_syntax.next_fire_time(trigger, job.last_run)
        horizon = now - timedelta(seconds=grace)
        if missed is not None and missed < horizon:
            logger.warning(
                "job %s missed fires from %s, beyond the %.0f s grace: skipped",
                job.id,
                missed.isoformat(),
                grace,
            )
            missed = schedule_syntax.next_fire_time(trigger, horizon - timedelta(microseconds=1))
        if missed is not None and missed < now:
            logger.info("job %s missed its fire at %s; running it once now", job.id, missed.isoformat())
        return missed

    def _fire(self, job_id: str) -> None:
        scheduled = current_run_time() or datetime.now(UTC)
        self._on_fire(job_id, scheduled)
