"""What happens when a job fires: claim the fire, then ensure the expected number of its
tasks are running.

The job is re-read from the store first (it may have been suspended, changed or deleted).
The expected and running counts are computed, then the fire is claimed in the store as a run
(create-if-absent per job and fire time, guarded by the leadership lease), so whatever the
number of replicas, crashes or retries, one fire launches once. The tasks are started with
RunTask client tokens derived from the run id; the run is finished with its outcome, and
lastRun, lastRunTasks, lastRunFailures and estimatedNextRun are written from it. One INFO line
per fire; errors are logged with the job id and never escape into the scheduler.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from common.config import RetrySettings, SchedulerSettings
from common.errors import JobNotFoundError, LaunchError, LeaseLostError, SchedulerError, StoreUnavailableError
from common.models import Job, JobStatus, LaunchFailure, Lease, Run, RunStatus, TrackedTask, outcome_status
from common.retry import retrying
from common.store.base import JobStore, RunLog
from scheduld.executor import LaunchResult, TaskLauncher
from scheduld.triggers import TriggerError, TriggerRegistry

logger = logging.getLogger(__name__)

class FiringStore(JobStore, RunLog, Protocol):
    """What a fire uses: the job (read, status) and the run log (claim, record); no leases."""


NextFireTime = Callable[[str], datetime | None]
FirstFireAfter = Callable[[Job, datetime, datetime], datetime | None]


class Firing:
    def __init__(
        self,
        *,
        store: FiringStore,
        launcher: TaskLauncher,
        triggers: TriggerRegistry,
        next_fire_time: NextFireTime,
        on_missing: Callable[[str], object],
        lease: Callable[[], Lease | None],
        replica: str,
        first_fire_after: FirstFireAfter | None = None,
        fires_due: Callable[[datetime], int] | None = None,
        settings: SchedulerSettings | None = None,
        retry: RetrySettings | None = None,
        on_recorded: Callable[[Job | None, Run], object] | None = None,
    ) -> None:
        self._store = store
        self._launcher = launcher
        self._triggers = triggers
        self._next_fire_time = next_fire_time
        self._on_missing = on_missing
        self._lease = lease
        self._replica = replica
        self._first_fire_after = first_fire_after
        self._fires_due = fires_due or (lambda _: 1)
        self._settings = settings or SchedulerSettings()
        self._on_recorded = on_recorded  # the tracker: follows launched tasks, reports launch failures
        self._retry_store = retrying(retry or RetrySettings(), temporary=StoreUnavailableError, logger=logger)

    def __call__(self, job_id: str, scheduled: datetime) -> None:
        started = time.monotonic()
        lag = (datetime.now(UTC) - scheduled).total_seconds()
        try:
            self._fire(job_id, scheduled, started, lag)
        except LeaseLostError as exc:
            logger.warning("job %s: fire at %s not claimed: %s", job_id, scheduled.isoformat(), exc.message)
        except Exception:  # one bad fire must never stop the scheduler
            logger.exception("job %s: fire at %s failed", job_id, scheduled.isoformat())

    def recover(self, run: Run, lease: Lease) -> None:
        """Complete a run whose claimer died: same run id, so the same RunTask client tokens."""
        if not self._store.claim_run(
            run.model_copy(update={"replica": self._replica, "token": lease.token}), lease
        ):
            return
        mine = run.model_copy(update={"replica": self._replica, "token": lease.token})
        try:
            job = self._store.get_job(run.job_id)
        except JobNotFoundError:
            self._finish(
                mine,
                LaunchResult(),
                status="failed",
                job_status=JobStatus(),  # nothing to write: the job is gone
                error="job deleted before its run completed",
            )
            return
        to_start = max(0, (mine.expected or 0) - (mine.running or 0))
        result = self._launch(job, to_start, mine.scheduled_for)
        self._complete(job, mine, to_start, result)
        logger.info("job %s: recovered run for %s, started %d", job.id, run.scheduled_for, len(result.tasks))

    def _fire(self, job_id: str, scheduled: datetime, started: float, lag: float) -> None:
        lease = self._lease()
        if lease is None:
            logger.info("job %s: not firing at %s, this replica does not lead", job_id, scheduled)
            return
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
        failures: list[LaunchFailure] = []
        try:
            expected = self._triggers.expected_count(job)
            if expected:
                fires = self._fires_due(scheduled)
                running = self._launcher.running_count(job, second=scheduled, fires=fires)
        except (TriggerError, LaunchError) as exc:
            failures.append(LaunchFailure(reason=type(exc).__name__, detail=exc.message))
            logger.warning("job %s: fire at %s cannot count tasks: %s", job_id, scheduled, exc.message)
        run = Run(
            job_id=job.id,
            scheduled_for=scheduled,
            coalesced_from=self._coalesced_from(job, scheduled),
            replica=self._replica,
            token=lease.token,
            expected=expected,
            running=running,
            timeout_seconds=job.timeout_seconds,
        )
        if not self._retry_store(self._store.claim_run, run, lease):
            logger.info("job %s: fire at %s already claimed", job_id, scheduled.isoformat())
            return
        to_start = 0 if failures else max(0, expected - running)
        result = self._launch(job, to_start, scheduled)
        result.failures[:0] = failures
        status = self._complete(job, run, to_start, result)
        logger.info(
            "job %s fired for %s: %s; expected %d, running %d, started %d, failed %d; lag %.3f s, "
            "took %.3f s",
            job_id,
            scheduled.isoformat(),
            status,
            expected,
            running,
            len(result.tasks),
            len(result.failures),
            lag,
            time.monotonic() - started,
        )

    def _launch(self, job: Job, count: int, scheduled: datetime) -> LaunchResult:
        if count <= 0:
            return LaunchResult()
        try:
            return self._launcher.launch(job, count, scheduled=scheduled)
        except LaunchError as exc:
            return LaunchResult(failures=[LaunchFailure(reason="LaunchError", detail=exc.message)])

    def _complete(self, job: Job, run: Run, to_start: int, result: LaunchResult) -> RunStatus:
        status: RunStatus
        if result.throttled and not result.tasks:
            status = "throttled"
        elif result.failures and not result.tasks:
            status = "failed"
        elif to_start == 0:
            status = "skipped"
        elif len(result.tasks) >= to_start:
            status = "launched"
        else:
            status = "partially_launched"
        if status in ("failed", "partially_launched", "throttled"):
            logger.warning("job %s: run for %s %s: %s", job.id, run.scheduled_for, status, result.failures)
        job_status = JobStatus(
            last_run=run.scheduled_for,
            last_run_tasks=result.tasks,
            last_run_failures=result.failures or None,
            estimated_next_run=self._next_fire_time(job.id),
        )
        if status == "failed":  # ended at launch: no task to track
            ended = outcome_status(job, run.model_copy(update={"status": status}))
            job_status = job_status.model_copy(
                update={name: getattr(ended, name) for name in ended.model_fields_set}
            )
        self._finish(run, result, status=status, job_status=job_status, job=job)
        return status

    def _finish(
        self,
        run: Run,
        result: LaunchResult,
        *,
        status: RunStatus,
        job_status: JobStatus,
        error: str | None = None,
        job: Job | None = None,
    ) -> None:
        """Store the run's outcome and, with it, the job's ``job_status`` (lastRun & co.)."""
        finished = run.model_copy(
            update={
                "status": status,
                "started": len(result.tasks),
                "tasks": [TrackedTask.model_validate(task.model_dump()) for task in result.tasks],
                "failures": result.failures,
                "error": error or (result.failures[0].detail if result.failures else None),
                "finished_at": datetime.now(UTC),
            }
        )
        keep = self._settings.run_history_per_job
        older_than = datetime.now(UTC) - timedelta(days=self._settings.run_history_days)
        try:
            if not self._retry_store(
                self._store.record_run, finished, job_status, keep=keep, older_than=older_than
            ):
                logger.info("job %s was deleted while firing; status not recorded", run.job_id)
        except SchedulerError as exc:
            logger.error("job %s: run for %s not recorded: %s", run.job_id, run.scheduled_for, exc.message)
            return
        if self._on_recorded is not None:
            self._on_recorded(job, finished)

    def _coalesced_from(self, job: Job, scheduled: datetime) -> datetime | None:
        """The earliest missed fire time this fire stands for, when fires were collapsed."""
        if self._first_fire_after is None or job.last_run is None or job.last_run >= scheduled:
            return None
        first = self._first_fire_after(job, job.last_run, scheduled)
        if first is None or first >= scheduled:
            return None
        # A gap: fires were missed, or a run finished without its status being written
        # (its replica died). Only what no run stands for yet is coalesced into this one.
        newest = self._store.list_runs(job.id, count=1)
        if newest and newest[0].scheduled_for > job.last_run:
            first = self._first_fire_after(job, newest[0].scheduled_for, scheduled)
        # fires missed by more than the grace were skipped, not coalesced (the schedule logs them)
        horizon = datetime.now(UTC) - timedelta(seconds=self._settings.misfire_grace_seconds)
        if first is not None and first < horizon:
            first = self._first_fire_after(job, horizon - timedelta(microseconds=1), scheduled)
        return first if first is not None and first < scheduled else None


def _should_fire(job: Job, scheduled: datetime) -> bool:
    if job.suspended:
        return False
    if job.schedule_start is not None and scheduled < job.schedule_start:
        return False
    return job.schedule_end is None or scheduled <= job.schedule_end
