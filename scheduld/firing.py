"""What happens when a job fires: claim the fire, then ensure the expected number of its
tasks are running.

The job is re-read from the store first (it may have been suspended, changed or deleted).
The expected and running counts are computed, then the fire is claimed in the store as a run
(create-if-absent per job and fire time, guarded by the leadership lease), so whatever the
number of replicas, crashes or retries, one fire launches once. The tasks are started with
RunTask client tokens derived from the run id; the run is finished with its outcome, and
lastRun, lastRunTasks, lastRunFailures and estimatedNextRun are written from it. The fires
handed over at once (a herd) are fired as a batch (scheduld/herd.py: one read, one claim and
one record for all, one INFO line); a batch of up to 10 keeps a line per fire. Errors are logged
with the job id and never escape into the scheduler.
"""

from __future__ import annotations

import functools
import itertools
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from common.config import RetrySettings, SchedulerSettings
from common.errors import JobNotFoundError, LaunchError, LeaseLostError, SchedulerError, StoreUnavailableError
from common.logging import bind
from common.models import (
    Attempt,
    Job,
    JobStatus,
    LaunchedTask,
    LaunchFailure,
    Lease,
    Run,
    RunStatus,
    TrackedTask,
    outcome_status,
)
from common.retry import retrying
from common.store.base import JobStore, RunLog, RunRecord, RunRequests
from scheduld import metrics, pacing, policies
from scheduld.batching import GroupCommit
from scheduld.deadletter import DeadLetters
from scheduld.executor import RUN_TASK_BATCH, LaunchResult, TaskLauncher
from scheduld.failures import FinalFailures
from scheduld.herd import Fire, Herd
from scheduld.triggers import TriggerError, TriggerRegistry

logger = logging.getLogger(__name__)


LINES_PER_FIRE_UP_TO = 10
"""A batch of up to this many fires logs a line per fire at INFO; a bigger one logs those at
DEBUG and one INFO line for the batch (a line each cost a herd more than its store writes)."""


class FiringStore(JobStore, RunLog, RunRequests, Protocol):
    """What a fire uses: the job (read, status) and the run log (claim, record, request the
    runs of a catch-up); no leases."""


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
        dead_letters: DeadLetters | None = None,
        on_changed: Callable[[str], object] | None = None,
        retry: RetrySettings | None = None,
        on_recorded: Callable[[Job | None, Run], object] | None = None,
        admit: Callable[[Run, int], bool] | None = None,
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
        self._failures = FinalFailures(
            store=store,
            launcher=launcher,
            settings=self._settings,
            dead_letters=dead_letters,
            on_changed=on_changed or (lambda _: None),
        )
        self._on_recorded = on_recorded  # the tracker: follows launched tasks, reports launch failures
        self._admit = admit  # scheduld/pacing.py: backfill and catch-up runs wait their turn
        self._retry_store = _tried_then_retried(retry or RetrySettings())
        # the fires of a herd claim and record their runs together (scheduld/batching.py)
        self._claims: GroupCommit[tuple[Run, Lease], bool | None] = GroupCommit(self._claim_together)
        self._records: GroupCommit[RunRecord, bool] = GroupCommit(store.record_runs)
        self._herd: Herd[_Launch] = Herd(
            self._fire_many, self._complete_many, self._alone, alone_threads=self._settings.max_workers
        )

    def __call__(self, job_id: str, scheduled: datetime) -> None:
        """Fire ``job_id`` for ``scheduled``, in a batch with the other fires waiting
        (scheduld/herd.py); returns once it is recorded."""
        self._herd.fire(job_id, scheduled)

    def hand_off(self, job_id: str, scheduled: datetime) -> None:
        """Fire as ``firing(job_id, scheduled)`` does, without waiting for it (the schedule's
        fires: scheduld/herd.py)."""
        self._herd.fire(job_id, scheduled, wait=False)

    def drain(self, timeout: float | None = None) -> bool:
        """Wait for the fires under way; False if some still are after ``timeout``."""
        return self._herd.drain(timeout)

    def _alone(self, fire: Fire) -> None:
        """A fire by itself, as before herds: the fallback for what a batch does not handle."""
        self._fire_alone(fire.job_id, fire.scheduled)

    def _fire_alone(self, job_id: str, scheduled: datetime) -> None:
        started = time.monotonic()
        lag = (datetime.now(UTC) - scheduled).total_seconds()
        try:
            with bind(job_id=job_id, scheduled_for=scheduled.isoformat()):
                self._fire(job_id, scheduled, started, lag)
        except LeaseLostError as exc:
            metrics.fired(job_id, "lease_lost")
            logger.warning("job %s: fire at %s not claimed: %s", job_id, scheduled.isoformat(), exc.message)
        except Exception:  # one bad fire must never stop the scheduler
            metrics.fired(job_id, "error")
            logger.exception("job %s: fire at %s failed", job_id, scheduled.isoformat())

    def recover(self, run: Run, lease: Lease) -> None:
        """Complete a run whose claimer died: same run id, so the same RunTask client tokens."""
        if not self._store.claim_run(
            run.model_copy(update={"replica": self._replica, "token": lease.token}), lease
        ):
            return
        metrics.RUNS_RECOVERED.inc()
        mine = run.model_copy(update={"replica": self._replica, "token": lease.token})
        if mine.attempts:  # it died during a retry: resume that round, same tokens
            self._resume(mine)
            return
        stored = self._job_or_fail(mine)
        if stored is None:
            return
        job = _job_for(mine, stored)
        # the same client tokens as the first try: what reached ECS then is not started twice
        to_start = policies.tasks_to_start(job, expected=mine.expected or 0, running=mine.running or 0)
        result = self._launch(job, to_start, mine.scheduled_for)
        self._complete(job, mine, to_start, result)
        logger.info("job %s: recovered run for %s, started %d", job.id, run.scheduled_for, len(result.tasks))

    def run_requested(self, run: Run, lease: Lease) -> bool:
        """A manual, backfill or catch-up run: launched once, whatever the job's schedule,
        suspension, trigger or overlap policy; it starts its taskCount (the job's, or the
        request's). False when it is not its turn yet (pacing): it stays requested."""
        started = time.monotonic()
        try:
            stored: Job | None = self._store.get_job(run.job_id)
        except JobNotFoundError:
            stored = None
        # the claim carries the count to start, so a leader that takes over after this one
        # dies mid-launch starts the same tasks (same client tokens) and no more
        expected = _job_for(run, stored).expected_task_count if stored is not None else 0
        if self._admit is not None and not self._admit(run, expected):
            return False
        mine = run.model_copy(
            update={
                "replica": self._replica,
                "token": lease.token,
                "status": "claimed",
                "claimed_at": datetime.now(UTC),
                "expected": expected,
            }
        )
        if not self._retry_store(self._store.reclaim_run, mine, lease, expect="requested"):
            return True
        if stored is None:
            self._job_or_fail(mine)
            return True
        job = _job_for(mine, stored)
        result = self._launch(job, expected, mine.scheduled_for)
        if self._admit is not None and pacing.paced(mine) and result.throttled and not result.tasks:
            # a scheduled fire took the quota's room since the pacer saw it: wait, not throttled
            requeued = mine.model_copy(update={"status": "requested"})
            if self._retry_store(self._store.reclaim_run, requeued, lease, expect="claimed"):
                logger.info("job %s: run %s waits for room in the quota", job.id, mine.run_id)
                return False
        status = self._complete(job, mine, expected, result)
        logger.info(
            "job %s: %s run %s: %s, started %d, failed %d; lag %.3f s, took %.3f s",
            job.id,
            mine.trigger,
            mine.run_id,
            status,
            len(result.tasks),
            len(result.failures),
            (datetime.now(UTC) - run.claimed_at).total_seconds(),
            time.monotonic() - started,
        )
        return True

    def retry(self, run: Run, lease: Lease) -> None:
        """The next launch attempt of a ``retrying`` run (its nextAttemptAt has come)."""
        mine = run.model_copy(
            update={
                "replica": self._replica,
                "token": lease.token,
                "status": "claimed",
                "next_attempt_at": None,
            }
        )
        if self._retry_store(self._store.reclaim_run, mine, lease, expect="retrying"):
            self._resume(mine)

    def _resume(self, mine: Run) -> None:
        """Launch what a run's last attempt could not; a retry round that ended without an
        answer from ECS keeps its client tokens, so a launch that did land is not repeated."""
        stored = self._job_or_fail(mine)
        if stored is None:
            return
        job = _job_for(mine, stored)
        attempts = mine.attempts or []
        last = attempts[-1]
        if last.uncertain:  # replay the same calls: ECS answers those that landed with their tasks
            round_, count = last.round, last.wanted
        else:  # a new round for what is still missing
            round_, count = last.round + 1, max(0, attempts[0].wanted - len(mine.tasks))
        result = self._launch(job, count, mine.scheduled_for, attempt=round_)
        status = self._complete(job, mine, count, result, round_=round_)
        logger.info(
            "job %s: attempt %d of run for %s: %s, started %d",
            job.id,
            len(mine.attempts or []) + 1,
            mine.scheduled_for.isoformat(),
            status,
            len(result.tasks),
        )

    def _job_or_fail(self, mine: Run) -> Job | None:
        try:
            return self._store.get_job(mine.job_id)
        except JobNotFoundError:
            self._finish(
                mine,
                LaunchResult(),
                status="failed",
                job_status=JobStatus(),  # nothing to write: the job is gone
                error="job deleted before its run completed",
            )
            return None

    def _fire(self, job_id: str, scheduled: datetime, started: float, lag: float) -> None:
        lease = self._lease()
        if lease is None:
            metrics.fired(job_id, "not_leader")
            logger.info("job %s: not firing at %s, this replica does not lead", job_id, scheduled)
            return
        try:
            job = self._store.get_job(job_id)
        except JobNotFoundError:
            metrics.fired(job_id, "deleted")
            logger.info("job %s was deleted; dropping it from the schedule", job_id)
            self._on_missing(job_id)
            return
        if not _should_fire(job, scheduled):
            metrics.fired(job_id, "suspended")
            logger.info("job %s: not firing at %s (suspended or outside its window)", job_id, scheduled)
            return
        coalesced_from = self._coalesced_from(job, scheduled)
        if coalesced_from is not None and self._first_fire_after is not None:
            catch_up = policies.missed_fires(
                job,
                first=coalesced_from,
                scheduled=scheduled,
                first_fire_after=self._first_fire_after,
                limit=self._settings.max_backfill_runs,
            )
            if catch_up:  # catchUpPolicy all: each missed fire its own run, paced (pending loop)
                self._request_catch_up(job, catch_up, lease)
                coalesced_from = None
        self._fire_one(job, scheduled, lease, coalesced_from=coalesced_from, started=started)

    def _fire_one(
        self, job: Job, scheduled: datetime, lease: Lease, *, coalesced_from: datetime | None, started: float
    ) -> None:
        job_id = job.id
        lag = (datetime.now(UTC) - scheduled).total_seconds()
        if policies.is_missed(job, scheduled=scheduled, now=datetime.now(UTC)):
            self._record_missed(job, scheduled, lease, lag)
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
            coalesced_from=coalesced_from,
            replica=self._replica,
            token=lease.token,
            expected=expected,
            running=running,
            timeout_seconds=job.timeout_seconds,
        )
        if not self._retry_store(self._claim, run, lease):
            metrics.fired(job_id, "already_claimed")
            logger.info("job %s: fire at %s already claimed", job_id, scheduled.isoformat())
            return
        to_start = 0 if failures else policies.tasks_to_start(job, expected=expected, running=running)
        if not failures and policies.replaces(job, expected=expected, running=running):
            try:
                run.stopped = self._launcher.stop_running(job, reason=policies.stop_reason(run.run_id))
            except LaunchError as exc:  # starting more would overlap: record it, start none
                failures.append(LaunchFailure(reason="StopTaskError", detail=exc.message))
                to_start = 0
        result = self._launch(job, to_start, scheduled)
        result.failures[:0] = failures
        status = self._complete(job, run, to_start, result)
        metrics.fired(job_id, status)
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

    def _request_catch_up(self, job: Job, moments: list[datetime], lease: Lease) -> None:
        runs = [
            Run(
                job_id=job.id,
                scheduled_for=moment,
                status="requested",
                replica=self._replica,
                token=lease.token,
                trigger="schedule",
            )
            for moment in moments
        ]
        stored = self._retry_store(self._store.request_runs, runs)
        logger.info("job %s: %d missed fires requested as runs (catchUpPolicy all)", job.id, len(stored))

    def _record_missed(self, job: Job, scheduled: datetime, lease: Lease, lag: float) -> None:
        run = Run(job_id=job.id, scheduled_for=scheduled, replica=self._replica, token=lease.token)
        if not self._retry_store(self._claim, run, lease):
            return
        deadline = job.starting_deadline_seconds
        logger.warning(
            "job %s: fire at %s missed: %.0f s late, startingDeadlineSeconds is %s",
            job.id,
            scheduled.isoformat(),
            lag,
            deadline,
        )
        self._finish(
            run,
            LaunchResult(),
            status="missed",
            job_status=JobStatus(
                last_run=scheduled, last_run_tasks=[], estimated_next_run=self._next_fire_time(job.id)
            ),
            error=f"could not start within startingDeadlineSeconds ({deadline}): {lag:.0f} s late",
            keep=policies.history_limit(job, self._settings),
        )

    def _launch(self, job: Job, count: int, scheduled: datetime, *, attempt: int = 0) -> LaunchResult:
        if count <= 0:
            return LaunchResult()
        try:
            return self._launcher.launch(job, count, scheduled=scheduled, attempt=attempt)
        except LaunchError as exc:
            return LaunchResult(failures=[LaunchFailure(reason="LaunchError", detail=exc.message)])

    def _complete(
        self, job: Job, run: Run, to_start: int, result: LaunchResult, *, round_: int = 0
    ) -> RunStatus:
        """Record an attempt's outcome; a failed launch is retried (retryPolicy) or, once
        retries are exhausted, reported (deadLetterQueue) and counted (suspendAfterFailures)."""
        outcome = self._outcome(job, run, to_start, result, round_=round_)
        self._after(outcome, written=self._write(outcome.record))
        return outcome.status

    def _after(self, outcome: _Outcome, *, written: bool) -> None:
        """What follows an outcome's record: tracking (once written), and a failure's
        consequences."""
        finished = outcome.record.run
        if written and self._on_recorded is not None:
            self._on_recorded(outcome.job, finished)
        if outcome.status in ("failed", "partially_launched"):
            self._failures.after(outcome.job, finished, launch_failed=outcome.launch_failed)

    def _outcome(
        self, job: Job, run: Run, to_start: int, result: LaunchResult, *, round_: int = 0
    ) -> _Outcome:
        """An attempt's outcome: its status, and the record that stores it."""
        now = datetime.now(UTC)
        known = {task.task_id for task in run.tasks}
        new = [task for task in result.tasks if task.task_id not in known]  # a replay re-reports
        tasks = [*run.tasks, *new]  # a retry adds to what earlier attempts started
        target = run.attempts[0].wanted if run.attempts else to_start
        status: RunStatus
        if result.throttled and not tasks:
            status = "throttled"
        elif result.failures and not tasks:
            status = "failed"
        elif target == 0:
            status = "skipped"
        elif len(tasks) >= target:
            status = "launched"
        else:
            status = "partially_launched"
        # a launch failed: ECS refused or could not place tasks (the quota's cap is no failure)
        launch_failed = 0 < to_start - result.throttled and len(result.tasks) < to_start - result.throttled
        launch_failed = launch_failed and any(f.reason != "Throttled" for f in result.failures)
        attempts = run.attempts
        if launch_failed or attempts:
            attempt = Attempt(
                at=now,
                wanted=to_start,
                started=len(new),
                round=round_,
                uncertain=result.uncertain,
                failures=result.failures,
            )
            attempts = [*(attempts or []), attempt]
        next_at = None
        if launch_failed:
            next_at = policies.next_attempt_at(
                job, self._settings, scheduled=run.scheduled_for, attempts=len(attempts or []), now=now
            )
        if next_at is not None:
            status = "retrying"
            logger.warning(
                "job %s: run for %s failed to launch (%s); attempt %d at %s",
                job.id,
                run.scheduled_for,
                result.failures,
                len(attempts or []) + 1,
                next_at.isoformat(),
            )
        elif status in ("failed", "partially_launched", "throttled"):
            logger.warning("job %s: run for %s %s: %s", job.id, run.scheduled_for, status, result.failures)
        job_status = JobStatus()  # a manual or backfill run leaves lastRun to the schedule
        if run.trigger is None:
            job_status = JobStatus(
                last_run=run.scheduled_for,
                last_run_tasks=tasks,
                last_run_failures=result.failures or None,
                estimated_next_run=self._next_fire_time(job.id),
            )
        retry = {"attempts": attempts, "next_attempt_at": next_at}
        if status == "failed" and run.trigger is None:  # ended at launch: no task to track
            ended = outcome_status(job, run.model_copy(update={**retry, "status": status}))
            job_status = job_status.model_copy(
                update={name: getattr(ended, name) for name in ended.model_fields_set}
            )
        record = self._record_of(
            run,
            LaunchResult(tasks=tasks, failures=result.failures),
            status=status,
            job_status=job_status,
            keep=policies.history_limit(job, self._settings),
            changes=retry,
            now=now,
        )
        return _Outcome(job, status, record, launch_failed)

    def _finish(
        self,
        run: Run,
        result: LaunchResult,
        *,
        status: RunStatus,
        job_status: JobStatus,
        error: str | None = None,
        keep: int | None = None,
        job: Job | None = None,
    ) -> Run:
        """Store the run's outcome and, with it, the job's ``job_status`` (lastRun & co.)."""
        record = self._record_of(run, result, status=status, job_status=job_status, error=error, keep=keep)
        if self._write(record) and self._on_recorded is not None:
            self._on_recorded(job, record.run)
        return record.run

    def _record_of(
        self,
        run: Run,
        result: LaunchResult,
        *,
        status: RunStatus,
        job_status: JobStatus,
        error: str | None = None,
        keep: int | None = None,
        changes: dict[str, Any] | None = None,
        now: datetime | None = None,
    ) -> RunRecord:
        """The record that stores ``run`` finished with ``result`` (and ``changes``)."""
        now = now or datetime.now(UTC)
        finished = run.model_copy(
            update={
                **(changes or {}),
                "status": status,
                "started": len(result.tasks),
                "tasks": [_tracked(task) for task in result.tasks],
                "failures": result.failures,
                "error": error or _error_of(result),
                "finished_at": now,
            }
        )
        keep = keep or self._settings.run_history_per_job
        older_than = now - timedelta(days=self._settings.run_history_days)
        return RunRecord(finished, job_status, keep, older_than)

    def _write(self, record: RunRecord) -> bool:
        """Write one record, together with those of other fires under way; False when the
        store failed (logged)."""
        run = record.run
        try:
            if not self._retry_store(self._records.commit, record):
                logger.info("job %s was deleted while firing; status not recorded", run.job_id)
        except SchedulerError as exc:
            logger.error("job %s: run for %s not recorded: %s", run.job_id, run.scheduled_for, exc.message)
            return False
        return True

    # --- herds: the fires of a batch (scheduld/herd.py) --------------------------------------

    def _fire_many(self, fires: list[Fire]) -> list[_Launch]:
        """Claim the runs of ``fires`` in one write and send their RunTask calls at once.
        A fire that needs more than a plain launch of one RunTask call (a catch-up, a missed
        deadline, overlap ``replace``, a count that failed...) goes back to fire alone, before
        anything of it is claimed."""
        lease = self._lease()
        if lease is None:
            for fire in fires:
                metrics.fired(fire.job_id, "not_leader")
                fire.handled()
            logger.info(
                "not firing %d jobs at %s, this replica does not lead", len(fires), fires[0].scheduled
            )
            return []
        try:  # one read for the batch; a job not found fires alone (which drops it)
            jobs = self._store.get_jobs({fire.job_id for fire in fires})
        except SchedulerError as exc:
            logger.warning("jobs of %d fires not read together (%s)", len(fires), exc.message)
            jobs = {}
        plain: list[tuple[Fire, Job, Run, int]] = []
        now = datetime.now(UTC)
        for fire in fires:
            job = jobs.get(fire.job_id)
            try:
                planned = None if job is None else self._plan(fire, job, lease, now)
            except Exception:  # noqa: BLE001 - it fires alone, which reports its own errors
                planned = None
            if planned is None:
                fire.handled(alone=functools.partial(self._alone, fire))
            else:
                plain.append(planned)
        if not plain:
            return []
        try:
            claimed = self._retry_store(self._store.claim_runs, [run for _, _, run, _ in plain], lease)
        except LeaseLostError as exc:
            for fire, _, _, _ in plain:
                metrics.fired(fire.job_id, "lease_lost")
                fire.handled()
            logger.warning("%d fires at %s not claimed: %s", len(plain), plain[0][0].scheduled, exc.message)
            return []
        except Exception:
            for fire, _, _, _ in plain:
                metrics.fired(fire.job_id, "error")
                fire.handled()
            logger.exception(
                "%d fires at %s failed: their runs could not be claimed", len(plain), fires[0].scheduled
            )
            return []
        to_launch: list[tuple[Fire, Job, Run, int]] = []
        skipped: list[_Launch] = []
        for planned, mine in zip(plain, claimed, strict=True):
            fire, job, run, to_start = planned
            if not mine:
                metrics.fired(fire.job_id, "already_claimed")
                logger.debug("job %s: fire at %s already claimed", fire.job_id, fire.scheduled.isoformat())
                fire.handled()
            elif to_start:
                to_launch.append(planned)
            else:
                skipped.append(_Launch(fire, job, run, to_start, _answer(LaunchResult())))
        launches: list[_Launch] = []
        for scheduled in {fire.scheduled for fire, _, _, _ in to_launch}:
            batch = [planned for planned in to_launch if planned[0].scheduled == scheduled]
            try:
                pending = self._launcher.start_launches(
                    [(job, to_start) for _, job, _, to_start in batch], scheduled=scheduled
                )
                answers = [under_way.result for under_way in pending]
            except Exception as exc:  # a bug: the claimed runs are recorded failed, not left
                logger.exception("%d launches for %s could not start", len(batch), scheduled)
                answers = [_answer(error=exc) for _ in batch]
            launches += [_Launch(*planned, answer) for planned, answer in zip(batch, answers, strict=True)]
        if skipped:
            self._complete_many(skipped)
        return launches

    def _plan(self, fire: Fire, job: Job, lease: Lease, now: datetime) -> tuple[Fire, Job, Run, int] | None:
        """A fire's run and the tasks it starts, if it is a plain one; None otherwise."""
        scheduled = fire.scheduled
        if not _should_fire(job, scheduled) or policies.is_missed(job, scheduled=scheduled, now=now):
            return None
        if self._coalesced_from(job, scheduled) is not None:
            return None
        expected = self._triggers.expected_count(job)
        running = 0
        if expected:
            running = self._launcher.running_count(job, second=scheduled, fires=self._fires_due(scheduled))
        if policies.replaces(job, expected=expected, running=running):
            return None
        to_start = policies.tasks_to_start(job, expected=expected, running=running)
        if to_start > RUN_TASK_BATCH:
            return None
        run = Run(
            job_id=job.id,
            scheduled_for=scheduled,
            replica=self._replica,
            token=lease.token,
            expected=expected,
            running=running,
            timeout_seconds=job.timeout_seconds,
        )
        return fire, job, run, to_start

    def _complete_many(self, launches: list[_Launch]) -> None:
        """Record the outcomes of answered launches in one write; one INFO line for them."""
        outcomes: list[_Outcome] = []
        for launch in launches:
            try:
                result = launch.answer.result()
            except LaunchError as exc:
                result = LaunchResult(failures=[LaunchFailure(reason="LaunchError", detail=exc.message)])
            except Exception as exc:  # noqa: BLE001 - this job's launch failed, not the batch
                logger.warning("job %s: launch failed: %s", launch.job.id, exc)
                result = LaunchResult(
                    failures=[LaunchFailure(reason="LaunchError", detail=type(exc).__name__)]
                )
            outcomes.append(self._outcome(launch.job, launch.run, launch.to_start, result))
        try:
            written = self._retry_store(self._store.record_runs, [outcome.record for outcome in outcomes])
        except SchedulerError as exc:
            logger.error("%d runs not recorded: %s", len(outcomes), exc.message)
            written = [None] * len(outcomes)
        statuses: Counter[str] = Counter()
        now = time.monotonic()
        single = len(launches) <= LINES_PER_FIRE_UP_TO  # a few fires: a line each, as alone
        for launch, outcome, stored in zip(launches, outcomes, written, strict=True):
            if stored is False:
                logger.info("job %s was deleted while firing; status not recorded", launch.job.id)
            try:
                self._after(outcome, written=stored is not None)
            except Exception:
                logger.exception("job %s: after its run for %s", launch.job.id, launch.fire.scheduled)
            statuses[outcome.status] += 1
            if single or logger.isEnabledFor(logging.DEBUG):  # a herd: one INFO line below
                with bind(job_id=launch.job.id, scheduled_for=launch.fire.scheduled.isoformat()):
                    logger.log(
                        logging.INFO if single else logging.DEBUG,
                        "job %s fired for %s: %s; expected %d, running %d, started %d, failed %d; "
                        "lag %.3f s, took %.3f s",
                        launch.job.id,
                        launch.fire.scheduled.isoformat(),
                        outcome.status,
                        launch.run.expected or 0,
                        launch.run.running or 0,
                        len(outcome.record.run.tasks),
                        len(outcome.record.run.failures),
                        launch.fire.lag,
                        now - launch.fire.started,
                    )
        metrics.fired_many(statuses, lambda: ((o.job.id, o.status) for o in outcomes))
        self._herd.handled([launch.fire for launch in launches])
        if single:
            return
        first = min(launches, key=lambda launch: launch.fire.scheduled)
        logger.info(
            "%d jobs fired for %s: %s; lag up to %.3f s, the slowest took %.3f s",
            len(launches),
            first.fire.scheduled.isoformat(),
            ", ".join(f"{count} {status}" for status, count in sorted(statuses.items())),
            max(launch.fire.lag for launch in launches),
            now - min(launch.fire.started for launch in launches),
        )

    def _claim(self, run: Run, lease: Lease) -> bool:
        """``claim_run``, written together with the claims of other fires under way."""
        claimed = self._claims.commit((run, lease))
        if claimed is None:
            raise LeaseLostError(lease.holder, lease.token)
        return claimed

    def _claim_together(self, claims: Sequence[tuple[Run, Lease]]) -> list[bool | None]:
        """One ``claim_runs`` per leadership term among ``claims`` (one, but for a fire of a
        previous term still under way); None answers the claims of a term whose lease is lost."""
        answers: list[bool | None] = []
        for _, group in itertools.groupby(claims, key=lambda c: (c[1].name, c[1].holder, c[1].token)):
            runs = list(group)
            try:
                answers += self._store.claim_runs([run for run, _ in runs], runs[0][1])
            except LeaseLostError:
                answers += [None] * len(runs)
        return answers

    def _coalesced_from(self, job: Job, scheduled: datetime) -> datetime | None:
        """The earliest missed fire time this fire stands for, when fires were collapsed."""
        if self._first_fire_after is None or job.last_run is None or job.last_run >= scheduled:
            return None
        first = self._first_fire_after(job, job.last_run, scheduled)
        if first is None or first >= scheduled:
            return None
        # A gap: fires were missed, or a run finished without its status being written
        # (its replica died). Only what no run stands for yet is coalesced into this one.
        newest = next((r for r in self._store.list_runs(job.id, count=10) if r.trigger is None), None)
        if newest is not None and newest.scheduled_for > job.last_run:  # manual runs aside
            first = self._first_fire_after(job, newest.scheduled_for, scheduled)
        # fires missed by more than the grace were skipped, not coalesced (the schedule logs them)
        horizon = datetime.now(UTC) - timedelta(seconds=policies.deadline_seconds(job, self._settings))
        if first is not None and first < horizon:
            first = self._first_fire_after(job, horizon - timedelta(microseconds=1), scheduled)
        return first if first is not None and first < scheduled else None


@dataclass
class _Launch:
    """A fire of a batch, claimed, whose launch is under way (or answered)."""

    fire: Fire
    job: Job
    run: Run
    to_start: int
    answer: Future[LaunchResult]


@dataclass
class _Outcome:
    job: Job
    status: RunStatus
    record: RunRecord
    launch_failed: bool


def _tried_then_retried(settings: RetrySettings) -> Callable[..., Any]:
    """A store call made as is, and put under the retry policy only once it failed: tenacity
    costs about as much CPU per call as the SQLite write it wraps, twice per fire (bench/
    README.md, "Herds"). The attempts in all stay ``settings.attempts``."""
    policy = retrying(
        settings, temporary=StoreUnavailableError, logger=logger, attempts=max(1, settings.attempts - 1)
    )

    def call(store_call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return store_call(*args, **kwargs)
        except StoreUnavailableError as exc:
            if settings.attempts <= 1:
                raise
            logger.warning("store call failed (%s); retrying", exc.message)
            return policy(store_call, *args, **kwargs)

    return call


def _answer(result: LaunchResult | None = None, *, error: BaseException | None = None) -> Future[Any]:
    """A launch's answer, known already."""
    answer: Future[Any] = Future()
    if error is not None:
        answer.set_exception(error)
    else:
        answer.set_result(result or LaunchResult())
    return answer


def _tracked(task: LaunchedTask) -> TrackedTask:
    """A task of a run: a copy of what tracking learnt of it, or RunTask's answer as is."""
    if isinstance(task, TrackedTask):
        return TrackedTask.model_validate(task.model_dump())
    return TrackedTask(task_id=task.task_id, host_id=task.host_id)


def _error_of(result: LaunchResult) -> str | None:
    if not result.failures:
        return None
    first = result.failures[0]
    return first.detail or first.reason


def _job_for(run: Run, job: Job) -> Job:
    """The job as this run launches it: a manual run's taskCount and overrides win, and it
    starts them all (overlap ``allow``)."""
    if run.trigger is None:
        return job
    update: dict[str, object] = {"overlap_policy": "allow", "max_count": None, "trigger": None}
    if run.task_count is not None:
        update["task_count"] = run.task_count
    if run.overrides is not None:
        update["overrides"] = run.overrides
    return job.model_copy(update=update)


def _should_fire(job: Job, scheduled: datetime) -> bool:
    if job.suspended:
        return False
    if job.schedule_start is not None and scheduled < job.schedule_start:
        return False
    return job.schedule_end is None or scheduled <= job.schedule_end
