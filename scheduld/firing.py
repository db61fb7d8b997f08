"""What happens when a job fires: ensure the expected number of its tasks are running.

The job is re-read from the store first (it may have been suspended, changed or deleted since
it was scheduled); then expected count − this job's running tasks are started, and lastRun,
lastRunTasks, lastRunFailures and estimatedNextRun are written back through the store's status
update, which never touches user fields. One INFO line per fire; errors are logged with the
job id and never escape into the scheduler.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

import tenacity

from common.errors import JobNotFoundError, LaunchError, SchedulerError, StoreUnavailableError
from common.models import Job, JobStatus, LaunchFailure
from common.store.base import JobStore
from scheduld.executor import LaunchResult, TaskLauncher
from scheduld.triggers import TriggerError, TriggerRegistry

logger = logging.getLogger(__name__)

NextFireTime = Callable[[str], datetime | None]


class Firing:
    def __init__(
        self,
        *,
        store: JobStore,
        launcher: TaskLauncher,
        triggers: TriggerRegistry,
        next_fire_time: NextFireTime,
        on_missing: Callable[[str], object],
    ) -> None:
        self._store = store
        self._launcher = launcher
        self._triggers = triggers
        self._next_fire_time = next_fire_time
        self._on_missing = on_missing
        self._write_status = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(StoreUnavailableError),
            stop=tenacity.stop_after_attempt(5),
            wait=tenacity.wait_exponential(multiplier=0.1, max=2),
            before_sleep=tenacity.before_sleep_log(logger, logging.WARNING),
            reraise=True,
        )

    def __call__(self, job_id: str, scheduled: datetime) -> None:
        started = time.monotonic()
        lag = (datetime.now(UTC) - scheduled).total_seconds()
        try:
            self._fire(job_id, scheduled, started, lag)
        except Exception:  # one bad fire must never stop the scheduler
            logger.exception("job %s: fire at %s failed", job_id, scheduled.isoformat())

    def _fire(self, job_id: str, scheduled: datetime, started: float, lag: float) -> None:
        try:
            job = self._store.get_job(job_id)
        except JobNotFoundError:
            logger.info("job %s was deleted; dropping it from the schedule", job_id)
            self._on_missing(job_id)
            return
        if not _should_fire(job, scheduled):
            logger.info("job %s: not firing at %s (suspended or outside its window)", job_id, scheduled)
            return
        expected = running = 0
        result = LaunchResult()
        try:
            expected = self._triggers.expected_count(job)
            running = self._launcher.running_count(job) if expected else 0
            if expected > running:
                result = self._launcher.launch(job, expected - running, scheduled=scheduled)
        except (TriggerError, LaunchError) as exc:
            result.failures.append(LaunchFailure(reason=type(exc).__name__, detail=exc.message))
            logger.warning("job %s: fire at %s could not launch: %s", job_id, scheduled, exc.message)
        self._record(job, scheduled, result)
        logger.info(
            "job %s fired for %s: expected %d, running %d, started %d, failed %d; lag %.3f s, took %.3f s",
            job_id,
            scheduled.isoformat(),
            expected,
            running,
            len(result.tasks),
            len(result.failures),
            lag,
            time.monotonic() - started,
        )

    def _record(self, job: Job, scheduled: datetime, result: LaunchResult) -> None:
        status = JobStatus(
            last_run=scheduled,
            last_run_tasks=result.tasks,
            last_run_failures=result.failures or None,
            estimated_next_run=self._next_fire_time(job.id),
        )
        try:
            self._write_status(self._store.update_status, job.id, status)
        except JobNotFoundError:
            logger.info("job %s was deleted while firing; status not recorded", job.id)
        except SchedulerError as exc:
            logger.error("job %s: could not record fire at %s: %s", job.id, scheduled, exc.message)


def _should_fire(job: Job, scheduled: datetime) -> bool:
    if job.suspended:
        return False
    if job.schedule_start is not None and scheduled < job.schedule_start:
        return False
    return job.schedule_end is None or scheduled <= job.schedule_end
