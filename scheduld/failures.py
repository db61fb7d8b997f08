"""What follows a run that finally failed (no retry left): the dead-letter message and the
``suspendAfterFailures`` count, kept apart from the firing path they follow."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

import tenacity

from common.config import SchedulerSettings
from common.errors import SchedulerError, StoreUnavailableError
from common.models import Job, Run
from common.store.base import JobStore, RunHistory
from scheduld import policies
from scheduld.deadletter import DeadLetters
from scheduld.executor import TaskLauncher

logger = logging.getLogger(__name__)


class FailureStore(JobStore, RunHistory, Protocol):
    """Reads the job's recent runs, suspends the job."""


class FinalFailures:
    def __init__(
        self,
        *,
        store: FailureStore,
        launcher: TaskLauncher,
        settings: SchedulerSettings,
        dead_letters: DeadLetters | None,
        on_changed: Callable[[str], object],
    ) -> None:
        self._store = store
        self._launcher = launcher
        self._settings = settings
        self._dead_letters = dead_letters
        self._on_changed = on_changed
        self._retry_store = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(StoreUnavailableError),
            stop=tenacity.stop_after_attempt(5),
            wait=tenacity.wait_exponential(multiplier=0.1, max=2),
            before_sleep=tenacity.before_sleep_log(logger, logging.WARNING),
            reraise=True,
        )

    def after(self, job: Job, run: Run, *, launch_failed: bool) -> None:
        """``run`` is recorded failed or partially launched with no retry to come."""
        target = policies.dead_letter_target(job, self._settings)
        if launch_failed and target and self._dead_letters is not None:
            wanted = run.attempts[0].wanted if run.attempts else run.expected or 0
            request = self._launcher.run_task_request(job, wanted)
            self._dead_letters.send(target, job=job, run=run, request=request)
        if run.status == "failed" and job.suspend_after_failures is not None:
            self._maybe_suspend(job, run)

    def _maybe_suspend(self, job: Job, run: Run) -> None:
        count = job.suspend_after_failures or 0
        recent = [r.status for r in self._store.list_runs(job.id, count=count)]
        if not policies.suspends(job, recent):
            return
        reason = f"suspended after {count} consecutive failed runs; last: {run.error}"[:1000]

        def suspend(current: Job) -> Job:
            return current.model_copy(update={"suspended": True, "suspended_reason": reason})

        try:
            self._retry_store(self._store.update_job, job.id, suspend)
        except SchedulerError as exc:
            logger.error("job %s: not suspended after failures: %s", job.id, exc.message)
            return
        logger.warning("job %s: %s", job.id, reason)
        self._on_changed(job.id)
