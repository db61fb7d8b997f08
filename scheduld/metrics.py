"""scheduld's Prometheus metrics, scraped at ``:9100/metrics`` (scheduld/http.py).

The modules that fire, launch, lead and consume call into these; nothing else reads them.
Label values come from small fixed sets (outcome, result, reason codes of ECS and botocore);
``job_fires`` alone is per job, and only records when ``metrics.per_job`` is on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from prometheus_client import Counter, Gauge, Histogram

from common.metrics import LAG_BUCKETS, LATENCY_BUCKETS, PREFIX, RECONCILE_BUCKETS, TASK_DURATION_BUCKETS

FIRES = Counter(
    PREFIX + "fires",
    "Fires handled, by outcome: launched, partially_launched, skipped (enough running or "
    "nothing wanted), failed, throttled (quotas.tasks_per_minute), suspended (or outside its "
    "window), not_leader, already_claimed, deleted, lease_lost, error",
    ["outcome"],
)
JOB_FIRES = Counter(
    PREFIX + "job_fires",
    "Fires by job and outcome; recorded only with metrics.per_job (one series per job)",
    ["job_id", "outcome"],
)
FIRE_LAG = Histogram(
    PREFIX + "fire_lag_seconds",
    "From a fire's scheduled time to its first RunTask call",
    buckets=LAG_BUCKETS,
)
RUN_TASK_CALLS = Counter(PREFIX + "run_task_calls", "RunTask calls, by result: ok or error", ["result"])
RUN_TASK_LATENCY = Histogram(
    PREFIX + "run_task_duration_seconds",
    "RunTask call latency, botocore's retries included",
    buckets=LATENCY_BUCKETS,
)
RUN_TASK_THROTTLES = Counter(
    PREFIX + "run_task_throttles",
    "RunTask attempts ECS throttled (each retried attempt counts)",
)
RUN_TASK_FAILURES = Counter(
    PREFIX + "run_task_failures",
    "Tasks RunTask did not start, by reason: ECS's failure reason or the API error code",
    ["reason"],
)
TASKS_STARTED = Counter(PREFIX + "tasks_started", "ECS tasks started by RunTask")
TRIGGER_DEPTH_READS = Counter(
    PREFIX + "trigger_depth_reads",
    "SQS-trigger queue depth reads, by result: ok or error",
    ["result"],
)
JOBS_SCHEDULED = Gauge(PREFIX + "jobs_scheduled", "Jobs in this replica's schedule (0 on a standby)")
LEADER = Gauge(PREFIX + "leader", "1 while this replica leads, else 0")
LEADERSHIP_CHANGES = Counter(
    PREFIX + "leadership_changes",
    "This replica's leadership changes, by change: elected or deposed",
    ["change"],
)
LEASE_RENEW_FAILURES = Counter(
    PREFIX + "lease_renew_failures", "Lease acquire/renew attempts that failed (store errors)"
)
EVENTS_CONSUMED = Counter(
    PREFIX + "events_consumed",
    "Change events received from the ops queue, by result: applied, retried, dead_lettered",
    ["result"],
)
EVENTS_DEAD_LETTERED = Counter(
    PREFIX + "events_dead_lettered", "Messages this replica moved to the dead-letter queue"
)
RECONCILE_DURATION = Histogram(
    PREFIX + "reconcile_duration_seconds",
    "Duration of a full schedule-versus-store reconcile",
    buckets=RECONCILE_BUCKETS,
)
RECONCILE_DRIFT = Counter(
    PREFIX + "reconcile_drift_corrected",
    "Jobs a periodic reconcile found out of step and fixed (a lost or late change event)",
)
RECONCILE_LAST = Gauge(PREFIX + "reconcile_last_timestamp_seconds", "When the last reconcile finished")
RUNS_RECOVERED = Counter(
    PREFIX + "claimed_runs_recovered", "Runs a dead leader left claimed that this replica completed"
)
RUNS_FINISHED = Counter(
    PREFIX + "runs_finished",
    "Runs whose end tracking recorded, by status: succeeded, failed or timedOut",
    ["status"],
)
TASK_DURATION = Histogram(
    PREFIX + "task_duration_seconds",
    "How long each tracked task ran (startedAt to stoppedAt as ECS reports them)",
    buckets=TASK_DURATION_BUCKETS,
)
TRACKING_LAG = Histogram(
    PREFIX + "tracking_lag_seconds",
    "From a run's last task stopping to tracking recording the run's end",
    buckets=LAG_BUCKETS,
)

_per_job = False


def configure(*, per_job: bool) -> None:
    """Settings of this process's metrics (``metrics.per_job``)."""
    global _per_job
    _per_job = per_job


def fired(job_id: str, outcome: str) -> None:
    FIRES.labels(outcome=outcome).inc()
    if _per_job:
        JOB_FIRES.labels(job_id=job_id, outcome=outcome).inc()


def fired_many(outcomes: Mapping[str, int], fires: Callable[[], Iterable[tuple[str, str]]]) -> None:
    """A batch's fires: ``outcomes`` counts them by outcome; ``fires`` gives (job id,
    outcome) of each, asked only with ``per_job``."""
    for outcome, count in outcomes.items():
        FIRES.labels(outcome=outcome).inc(count)
    if _per_job:
        for job_id, outcome in fires():
            JOB_FIRES.labels(job_id=job_id, outcome=outcome).inc()


def run_finished(status: str, *, task_durations: list[float], ended_at: datetime, now: datetime) -> None:
    RUNS_FINISHED.labels(status=status).inc()
    for seconds in task_durations:
        TASK_DURATION.observe(seconds)
    TRACKING_LAG.observe(max(0.0, (now - ended_at).total_seconds()))


def launching(scheduled: datetime, now: datetime) -> None:
    FIRE_LAG.observe(max(0.0, (now - scheduled).total_seconds()))


def observe_state(*, leading: Callable[[], bool], jobs_scheduled: Callable[[], int]) -> None:
    """Gauges read at scrape time from the daemon (the last daemon built in this process)."""
    LEADER.set_function(lambda: 1.0 if leading() else 0.0)
    JOBS_SCHEDULED.set_function(lambda: float(jobs_scheduled()))
