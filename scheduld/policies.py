"""Per-job firing policies: overlap, starting deadline, catch-up and run history.

Pure decisions over a job and the numbers a fire has gathered, so scheduld/firing.py stays
the one place that claims, launches and records. With every default, a job that sets none of
them fires as it did before they existed:

- ``overlapPolicy``: ``topUp`` (default) starts taskCount minus the job's running tasks;
  ``skip`` starts nothing while any of them runs; ``allow`` always starts taskCount;
  ``replace`` stops the running ones (StopTask, with a reason naming the run) first.
- ``startingDeadlineSeconds``: a fire that cannot start within it is recorded ``missed``
  and launches nothing; without it the global misfire grace applies, as before.
- ``catchUpPolicy``: ``coalesce`` (default) lets one run stand for every missed fire; ``all``
  requests a run (trigger ``schedule``) for each missed fire within the deadline, launched
  oldest first by the leader's pending loop at the backfill pace (scheduld/pacing.py).
- ``runHistoryLimit``: runs kept for the job (default ``scheduler.run_history_per_job``).
- ``retryPolicy``: a failed launch is tried again with exponential backoff and jitter until
  ``maximumRetryAttempts`` or ``maximumEventAgeSeconds`` (defaults in settings: no retries);
  then the ``deadLetterQueue`` gets one message, and ``suspendAfterFailures`` consecutive
  failed runs suspend the job.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from common.config import SchedulerSettings
from common.models import Job

FirstFireAfter = Callable[[Job, datetime, datetime], datetime | None]


def tasks_to_start(job: Job, *, expected: int, running: int) -> int:
    """How many tasks this fire starts, by the job's overlap policy."""
    policy = job.overlap_policy or "topUp"
    if policy == "skip":
        return 0 if running else expected
    if policy in ("allow", "replace"):
        return expected
    return max(0, expected - running)


def replaces(job: Job, *, expected: int, running: int) -> bool:
    """Whether this fire stops the job's running tasks before starting new ones."""
    return job.overlap_policy == "replace" and running > 0 and expected > 0


def stop_reason(run_id: str) -> str:
    """The StopTask reason (ECS keeps 255 characters)."""
    return f"ecs-scheduler: replaced by run {run_id} (overlapPolicy replace)"[:255]


def deadline_seconds(job: Job, settings: SchedulerSettings) -> float:
    """How late a fire of this job may start."""
    return float(job.starting_deadline_seconds or settings.misfire_grace_seconds)


def is_missed(job: Job, *, scheduled: datetime, now: datetime) -> bool:
    """A fire later than the job's own startingDeadlineSeconds (only when the job sets one:
    the global grace, ``scheduler.misfire_grace_seconds``, is applied by the schedule)."""
    if job.starting_deadline_seconds is None:
        return False
    return (now - scheduled).total_seconds() > job.starting_deadline_seconds


def history_limit(job: Job, settings: SchedulerSettings) -> int:
    return job.run_history_limit or settings.run_history_per_job


def missed_fires(
    job: Job,
    *,
    first: datetime,
    scheduled: datetime,
    first_fire_after: FirstFireAfter,
    limit: int,
) -> list[datetime]:
    """With ``catchUpPolicy: all``, the missed fire times from ``first`` up to (not
    including) ``scheduled``, oldest first, at most ``limit``; empty for ``coalesce``."""
    if job.catch_up_policy != "all":
        return []
    times: list[datetime] = []
    moment: datetime | None = first
    while moment is not None and moment < scheduled and len(times) < limit:
        times.append(moment)
        moment = first_fire_after(job, moment, scheduled - timedelta(microseconds=1))
    return times


def retry_limits(job: Job, settings: SchedulerSettings) -> tuple[int, int]:
    """(maximumRetryAttempts, maximumEventAgeSeconds): the job's, else the server defaults."""
    policy = job.retry_policy
    attempts = settings.retry_maximum_attempts
    age = settings.retry_maximum_event_age_seconds
    if policy is not None and policy.maximum_retry_attempts is not None:
        attempts = policy.maximum_retry_attempts
    if policy is not None and policy.maximum_event_age_seconds is not None:
        age = policy.maximum_event_age_seconds
    return attempts, age


def next_attempt_at(
    job: Job, settings: SchedulerSettings, *, scheduled: datetime, attempts: int, now: datetime
) -> datetime | None:
    """When a run whose launch failed ``attempts`` times tries again: exponential backoff
    with jitter (half fixed, half random), or None once either retry limit is reached (the
    event's age counts from its scheduled time, as in EventBridge)."""
    max_retries, max_age = retry_limits(job, settings)
    retries = attempts - 1
    if retries >= max_retries:
        return None
    base = min(settings.retry_backoff_max_seconds, settings.retry_backoff_seconds * 2**retries)
    due = now + timedelta(seconds=base / 2 + random.uniform(0, base / 2))  # noqa: S311 - spreading, not secrecy
    if (due - scheduled).total_seconds() > max_age:
        return None
    return due


def dead_letter_target(job: Job, settings: SchedulerSettings) -> str | None:
    """The queue (name or ARN) for a run that exhausted its retries, if any."""
    if job.dead_letter_queue is not None:
        return job.dead_letter_queue.arn or job.dead_letter_queue.queue_name
    return settings.dead_letter_queue


def suspends(job: Job, recent_statuses: Sequence[str]) -> bool:
    """``suspendAfterFailures: n``: the newest n runs all failed."""
    n = job.suspend_after_failures
    return n is not None and len(recent_statuses) >= n and all(s == "failed" for s in recent_statuses[:n])
