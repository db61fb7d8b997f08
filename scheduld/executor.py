"""ECS: count a job's running tasks and start more with RunTask.

Attribution: ``startedBy`` is ``<prefix>/<16-hex hash of the job id>`` (ECS allows 36
characters, so long job ids still fit, and two jobs on one task definition never count each
other's tasks); each task is also tagged ``ecs-scheduler:job-id`` for people. RunTask starts at
most 10 tasks a call, so launches are batched. Throttling and transient errors are botocore's
to retry (``retry`` settings: adaptive mode by default, whose client-side rate limiter makes
a herd of fires queue once ECS throttles instead of failing; bounded by the ``aws`` timeouts).
A ``LaunchQuota`` caps the tasks launched per minute, all jobs together: what it refuses is
reported in ``LaunchResult.throttled`` so the run records it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from common import aws
from common.config import ECSSettings, Settings
from common.errors import LaunchError
from common.models import Job, LaunchedTask, LaunchFailure, run_id
from scheduld import metrics
from scheduld.running import SharedRunningCounts

if TYPE_CHECKING:
    import botocore.session
    from mypy_boto3_ecs import ECSClient

logger = logging.getLogger(__name__)

RUN_TASK_BATCH = 10
JOB_TAG = "ecs-scheduler:job-id"
SCHEDULED_TAG = "ecs-scheduler:scheduled-for"
THROTTLE_CODES = frozenset(
    {"Throttling", "ThrottlingException", "ThrottledException", "TooManyRequestsException"}
    | {"RequestLimitExceeded"}
)
_THROTTLE_HOOK = "ecs-scheduler-throttle-count"
_PASS_THROUGH = (
    "launchType",
    "capacityProviderStrategy",
    "platformVersion",
    "networkConfiguration",
    "group",
    "propagateTags",
    "enableExecuteCommand",
)


def started_by(prefix: str, job_id: str) -> str:
    """The job's startedBy marker: fits ECS's 36 characters whatever the id's length."""
    return f"{prefix}/{hashlib.blake2b(job_id.encode(), digest_size=8).hexdigest()}"


def ecs_client(
    settings: Settings, *, pool: int = 10, session: botocore.session.Session | None = None
) -> ECSClient:
    """scheduld's ECS client: every call bounded by ``aws.ecs_read_timeout_seconds`` and
    ``retry.aws_max_attempts``, so one stalled call cannot hold a fire for long."""
    client: ECSClient = aws.client(
        "ecs",
        settings.aws,
        retry=settings.retry,
        read_timeout=settings.aws.ecs_read_timeout_seconds,
        max_pool_connections=pool,
        session=session,
    )
    return client


class LaunchQuota:
    """At most ``per_minute`` tasks launched in any 60 s, all jobs together; 0 means no cap."""

    WINDOW = 60.0

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._granted: deque[tuple[float, int]] = deque()
        self._used = 0
        self._lock = threading.Lock()

    def take(self, wanted: int) -> int:
        """How many of ``wanted`` tasks may start now (counted as started)."""
        if self.per_minute <= 0:
            return wanted
        with self._lock:
            now = self._clock()
            while self._granted and now - self._granted[0][0] >= self.WINDOW:
                self._used -= self._granted.popleft()[1]
            granted = max(0, min(wanted, self.per_minute - self._used))
            if granted:
                self._granted.append((now, granted))
                self._used += granted
            return granted

    def has_room(self, wanted: int) -> bool:
        """Whether ``wanted`` tasks may start now (nothing taken: scheduld/pacing.py asks)."""
        if self.per_minute <= 0:
            return True
        with self._lock:
            now = self._clock()
            used = sum(count for moment, count in self._granted if now - moment < self.WINDOW)
            return min(wanted, self.per_minute) <= self.per_minute - used

    def give_back(self, unused: int) -> None:
        """Return tasks granted but not started (RunTask refused them)."""
        if self.per_minute <= 0 or unused <= 0:
            return
        with self._lock:
            if self._granted:
                moment, count = self._granted.pop()
                kept = max(0, count - unused)
                self._used -= count - kept
                if kept:
                    self._granted.append((moment, kept))


@dataclass
class LaunchResult:
    tasks: list[LaunchedTask] = field(default_factory=list)
    failures: list[LaunchFailure] = field(default_factory=list)
    uncertain: bool = False
    """A call failed without an answer (timeout, connection): ECS may have launched it."""
    throttled: int = 0
    """Tasks not started because the launch quota (``quotas.tasks_per_minute``) was used up."""


RunTaskCall = Callable[[dict[str, Any]], Any]
"""Sends one RunTask call (its keyword arguments), as ``ecs.run_task(**params)`` does."""
RunTaskCalls = Callable[[list[dict[str, Any]]], list["Future[Any]"]]
"""Sends RunTask calls at once without waiting: one future per call, answered with the
response or failed with the error boto3 raised (``LaunchPool.run_tasks``)."""


@dataclass
class PendingLaunch:
    """A launch of one RunTask call under way (``TaskLauncher.start_launches``)."""

    job: Job
    count: int
    result: Future[LaunchResult]


class TaskLauncher:
    def __init__(
        self,
        ecs: ECSClient,
        settings: ECSSettings,
        *,
        quota: LaunchQuota | None = None,
        run_task: RunTaskCall | None = None,
        run_tasks: RunTaskCalls | None = None,
        threads: int = 32,
    ) -> None:
        self._ecs = ecs
        # RunTask itself may go to launcher processes (scheduld/launcher.py); the rest stays here
        self._run_task: RunTaskCall = run_task or (lambda params: ecs.run_task(**params))
        self._run_tasks: RunTaskCalls = run_tasks or self._on_threads
        self._threads = threads
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._quota = quota or LaunchQuota(0)
        self._cluster = settings.cluster
        self._prefix = settings.started_by
        # made once: botocore's get_paginator lists its data directories on every call
        self._list_tasks = ecs.get_paginator("list_tasks")
        self._shared = SharedRunningCounts(self._count_started_by, self._count_cluster)
        # each attempt, retried ones included: botocore's retries hide throttling otherwise
        ecs.meta.events.register("needs-retry.ecs.RunTask", _count_throttle, unique_id=_THROTTLE_HOOK)

    def running_count(self, job: Job, *, second: datetime | None = None, fires: int = 1) -> int:
        """This job's tasks still PENDING or RUNNING. For a fire of ``second`` with ``fires``
        fires due on it, one cluster listing may serve them all (scheduld/running.py)."""
        marker = started_by(self._prefix, job.id)
        try:
            if second is None:
                return self._count_started_by(marker)
            return self._shared.count(marker, second=second, fires=fires)
        except LaunchError as exc:
            raise LaunchError(job.id, exc.detail) from exc

    def _count_started_by(self, marker: str) -> int:
        """ListTasks takes startedBy as its only filter and may still list recently stopped
        tasks, so DescribeTasks confirms which are live."""
        with _translate(marker, "ListTasks"):
            arns = [
                arn
                for page in self._list_tasks.paginate(cluster=self._cluster, startedBy=marker)
                for arn in page["taskArns"]
            ]
        return sum(1 for task in self._describe(marker, arns) if task.get("desiredStatus") == "RUNNING")

    def _count_cluster(self) -> tuple[Counter[str], int]:
        """Every live task of the cluster per startedBy, and the calls that took."""
        pages = 0
        arns: list[str] = []
        with _translate("(cluster)", "ListTasks"):
            for page in self._list_tasks.paginate(cluster=self._cluster, desiredStatus="RUNNING"):
                pages += 1
                arns += page["taskArns"]
        tasks = self._describe("(cluster)", arns)
        counts = Counter(
            task["startedBy"]
            for task in tasks
            if task.get("desiredStatus") == "RUNNING" and "startedBy" in task
        )
        return counts, pages + -(-len(arns) // 100)

    def _describe(self, subject: str, arns: list[str]) -> list[dict[str, Any]]:
        # ECS sets desiredStatus STOPPED once a task ends or is stopped
        tasks: list[Any] = []  # TaskTypeDef
        for start in range(0, len(arns), 100):
            with _translate(subject, "DescribeTasks"):
                tasks += self._ecs.describe_tasks(cluster=self._cluster, tasks=arns[start : start + 100])[
                    "tasks"
                ]
        return tasks

    def stop_running(self, job: Job, *, reason: str) -> list[str]:
        """StopTask each live task of ``job`` (overlapPolicy replace); returns their ARNs."""
        marker = started_by(self._prefix, job.id)
        with _translate(job.id, "ListTasks"):
            arns = [
                arn
                for page in self._list_tasks.paginate(cluster=self._cluster, startedBy=marker)
                for arn in page["taskArns"]
            ]
        live = [t["taskArn"] for t in self._describe(job.id, arns) if t.get("desiredStatus") == "RUNNING"]
        for arn in live:
            with _translate(job.id, "StopTask"):
                self._ecs.stop_task(cluster=self._cluster, task=arn, reason=reason)
            logger.info("job %s: stopped task %s (%s)", job.id, arn, reason)
        return live

    def launch(self, job: Job, count: int, *, scheduled: datetime, attempt: int = 0) -> LaunchResult:
        """Start ``count`` tasks in batches of ≤ 10; ECS's per-task failures are collected.
        Beyond the launch quota, tasks are not started and counted in ``throttled``.

        ``attempt`` (a retry round, scheduld/policies.py) picks fresh client tokens: ECS
        answers a used token with that call's outcome, failures included."""
        result = LaunchResult()
        count = self._take_quota(job, count, result)
        base = self._run_task_params(job)
        remaining, batch = count, 0
        if remaining > 0:
            metrics.launching(scheduled, datetime.now(UTC))
        while remaining > 0:
            size = min(RUN_TASK_BATCH, remaining)
            params = self._call_params(job, base, size, scheduled, batch, attempt)
            started = time.monotonic()
            try:
                response = self._run_task(params)
            except Exception as exc:  # noqa: BLE001 - settled (translated, or raised) below
                if not self._settle(job, batch, size, started, None, exc, result):
                    break
            else:
                self._settle(job, batch, size, started, response, None, result)
            remaining -= size
            batch += 1
        self._quota.give_back(count - len(result.tasks))
        return result

    def start_launches(self, launches: list[tuple[Job, int]], *, scheduled: datetime) -> list[PendingLaunch]:
        """Launch each job's ``count`` (≤ 10: one RunTask call) tasks for the fire of
        ``scheduled``, all calls sent at once (a herd's launches: one message per launcher
        process, scheduld/launcher.py); each ``PendingLaunch.result`` is answered as
        ``launch`` would have returned."""
        pending: list[PendingLaunch] = []
        calls: list[dict[str, Any]] = []
        waiting: list[tuple[PendingLaunch, LaunchResult, int]] = []
        now = datetime.now(UTC)
        for job, count in launches:
            if not 0 < count <= RUN_TASK_BATCH:
                raise ValueError(f"start_launches takes 1 to {RUN_TASK_BATCH} tasks a job, not {count}")
            launch = PendingLaunch(job, count, Future())
            pending.append(launch)
            result = LaunchResult()
            try:
                granted = self._take_quota(job, count, result)
                if granted:
                    calls.append(self._call_params(job, self._run_task_params(job), granted, scheduled, 0, 0))
            except Exception as exc:  # noqa: BLE001 - one job's bad document fails that job only
                launch.result.set_exception(exc)
                continue
            if not granted:
                launch.result.set_result(result)
                continue
            metrics.launching(scheduled, now)
            waiting.append((launch, result, granted))
        if not calls:
            return pending
        started = time.monotonic()
        try:
            answers = self._run_tasks(calls)
        except Exception as exc:  # noqa: BLE001 - every launch of the batch fails with it
            for launch, _, _ in waiting:
                launch.result.set_exception(exc)
            return pending
        for (launch, result, granted), answer in zip(waiting, answers, strict=True):
            answer.add_done_callback(functools.partial(self._answered, launch, result, granted, started))
        return pending

    def _answered(
        self, launch: PendingLaunch, result: LaunchResult, granted: int, started: float, answer: Future[Any]
    ) -> None:
        try:
            error = answer.exception()
            self._settle(launch.job, 0, granted, started, None if error else answer.result(), error, result)
        except BaseException as exc:  # noqa: BLE001 - never lost: the fire records it failed
            launch.result.set_exception(exc)
        else:
            launch.result.set_result(result)
        finally:
            self._quota.give_back(granted - len(result.tasks))

    def _on_threads(self, calls: list[dict[str, Any]]) -> list[Future[Any]]:
        """In scheduld's process (no launcher processes): each call on a thread of a pool."""
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self._threads, thread_name_prefix="runtask")
            pool = self._pool
        return [pool.submit(self._run_task, params) for params in calls]

    def close(self) -> None:
        """Stop the in-process RunTask threads, once the calls under way are answered."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def _call_params(
        self, job: Job, base: dict[str, Any], size: int, scheduled: datetime, batch: int, attempt: int
    ) -> dict[str, Any]:
        return {
            **base,
            "count": size,
            "clientToken": _client_token(job.id, scheduled, batch, attempt),
            "tags": [
                *base["tags"],
                {"key": SCHEDULED_TAG, "value": scheduled.astimezone(UTC).isoformat()},
            ],
        }

    def _settle(
        self,
        job: Job,
        batch: int,
        size: int,
        started: float,
        response: Any,
        error: BaseException | None,
        result: LaunchResult,
    ) -> bool:
        """Add one RunTask call's answer (``response``, or the ``error`` it raised) to
        ``result``, with its metrics and log lines; False when the call failed."""
        try:
            with _translate(job.id, "RunTask"), _measured(size, started):
                if error is not None:
                    raise error
        except LaunchError as exc:
            result.failures.append(LaunchFailure(reason="RunTaskError", detail=exc.message))
            result.uncertain = isinstance(exc.__cause__, BotoCoreError)
            logger.warning("job %s: RunTask batch %d of %d tasks failed: %s", job.id, batch, size, exc)
            return False
        metrics.TASKS_STARTED.inc(len(response.get("tasks", [])))
        for task in response.get("tasks", []):
            result.tasks.append(
                LaunchedTask(task_id=task["taskArn"], host_id=task.get("containerInstanceArn"))
            )
        for failure in response.get("failures", []):
            metrics.RUN_TASK_FAILURES.labels(reason=_reason(failure.get("reason"))).inc()
            result.failures.append(
                LaunchFailure(
                    reason=failure.get("reason", "unknown"),
                    detail=failure.get("detail"),
                    arn=failure.get("arn"),
                )
            )
            logger.warning(
                "job %s: RunTask failure %s %s (%s)",
                job.id,
                failure.get("reason"),
                failure.get("detail", ""),
                failure.get("arn", ""),
            )
        return True

    def _take_quota(self, job: Job, count: int, result: LaunchResult) -> int:
        """How many of ``count`` tasks the launch quota lets start now; the rest is recorded
        in ``result`` as throttled."""
        granted = self._quota.take(count)
        if granted < count:
            result.throttled = count - granted
            result.failures.append(
                LaunchFailure(
                    reason="Throttled",
                    detail=f"{result.throttled} of {count} tasks not started: the cap of "
                    f"{self._quota.per_minute} tasks per minute (quotas.tasks_per_minute) is reached",
                )
            )
            logger.warning(
                "job %s: %d of %d tasks throttled (cap %d tasks per minute)",
                job.id,
                result.throttled,
                count,
                self._quota.per_minute,
            )
            count = granted
        return count

    def run_task_request(self, job: Job, count: int) -> dict[str, Any]:
        """The RunTask request a launch of ``count`` tasks sends (without its client token),
        for the dead-letter message of a run that could not be launched."""
        return {**self._run_task_params(job), "count": min(count, RUN_TASK_BATCH)}

    def _run_task_params(self, job: Job) -> dict[str, Any]:
        document = job.to_document()
        params: dict[str, Any] = {
            "cluster": self._cluster,
            "taskDefinition": job.task_definition,
            "startedBy": started_by(self._prefix, job.id),
            "tags": [{"key": JOB_TAG, "value": job.id}, *document.get("tags", [])],
        }
        params.update({name: document[name] for name in _PASS_THROUGH if name in document})
        if job.overrides:
            params["overrides"] = {
                "containerOverrides": [_container_override(o) for o in document["overrides"]]
            }
        return params


def _container_override(override: dict[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {"name": override["containerName"]}
    if "environment" in override:
        converted["environment"] = [{"name": k, "value": v} for k, v in override["environment"].items()]
    if "command" in override:
        converted["command"] = override["command"]
    return converted


def _client_token(job_id: str, scheduled: datetime, batch: int, attempt: int = 0) -> str:
    """The run id (job, fire time) and batch, shortened to ECS's 64 characters: the same fire
    sends the same tokens, so ECS does not launch again for a retried or recovered call.
    Retry rounds after the first add their number (round 0 keeps the original tokens)."""
    seed = f"{run_id(job_id, scheduled)}#{batch}{f'#retry{attempt}' if attempt else ''}".encode()
    return hashlib.sha256(seed).hexdigest()[:64]


def _count_throttle(response: Any = None, **kwargs: Any) -> None:
    """botocore's needs-retry hook: returns None, so the retry decision stays botocore's."""
    if throttled(response):
        metrics.RUN_TASK_THROTTLES.inc()


def throttled(response: Any) -> bool:
    """A botocore needs-retry ``response`` (http response, parsed) is a throttling error."""
    return response is not None and response[1].get("Error", {}).get("Code") in THROTTLE_CODES


def _reason(reason: str | None) -> str:
    """ECS failure reasons, minus their variable part (``RESOURCE:MEMORY`` → ``RESOURCE``)."""
    return (reason or "unknown").split(":", 1)[0][:40]


@contextlib.contextmanager
def _measured(tasks: int, started: float) -> Iterator[None]:
    """Latency (since ``started``) and result of one RunTask call; a failed call fails all
    its tasks."""
    try:
        yield
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code") or "ClientError")
        metrics.RUN_TASK_CALLS.labels(result="error").inc()
        metrics.RUN_TASK_FAILURES.labels(reason=code[:40]).inc(tasks)
        raise
    except BotoCoreError as exc:
        metrics.RUN_TASK_CALLS.labels(result="error").inc()
        metrics.RUN_TASK_FAILURES.labels(reason=type(exc).__name__).inc(tasks)
        raise
    else:
        metrics.RUN_TASK_CALLS.labels(result="ok").inc()
    finally:
        metrics.RUN_TASK_LATENCY.observe(time.monotonic() - started)


@contextlib.contextmanager
def _translate(job_id: str, action: str) -> Iterator[None]:
    """botocore's errors (after its own bounded retries) become LaunchError, chained."""
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise LaunchError(job_id, f"{action}: {error.get('Code')}: {error.get('Message')}") from exc
    except BotoCoreError as exc:  # its text names the endpoint URL: logged, not recorded
        logger.warning("job %s: %s failed: %s", job_id, action, exc)
        raise LaunchError(job_id, f"{action}: {aws.describe_error(exc, 'ECS')}") from exc
