"""Task outcomes: how every task a run launched ended, and so how the run ended.

The leader keeps the runs still open (``launched``/``partially_launched``) in memory, reloaded
from the store's run log each pass, so a new leader picks up the runs its predecessor left in
flight. Two sources tell it that tasks stopped:

- polling: DescribeTasks, 100 tasks a call, for the tasks not known to have stopped, every
  ``tracking.poll_interval_seconds``, at most ``max_describe_calls_per_poll`` calls a pass
  (oldest runs first). Cost: ceil(tasks in flight / 100) calls per pass.
- events: with ``ecs.tasks_events_queue`` set, "ECS Task State Change" events from
  EventBridge arrive on that SQS queue and end tasks as they come; polling then only sweeps,
  every ``sweep_interval_seconds``, the tasks events missed.

When every task of a run stopped, the run ends ``succeeded`` (every essential container
exited 0), ``failed`` (a non-zero exit, a stop code such as TaskFailedToStart, or launch
failures) or ``timedOut`` (scheduld stopped a task running past the job's ``timeoutSeconds``,
counted from the launch). The end is recorded once (``record_outcome``), then notified.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

import orjson
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from common.config import ECSSettings, TrackingSettings
from common.errors import JobNotFoundError, SchedulerError
from common.models import ContainerOutcome, Job, Run, RunStatus, TrackedTask
from common.store.base import JobStore, RunLog
from scheduld import metrics
from scheduld.notify import Notifier

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient

logger = logging.getLogger(__name__)


class TrackingStore(JobStore, RunLog, Protocol):
    """What tracking uses: open runs and their outcomes (run log), the job they belong to."""


DESCRIBE_BATCH = 100
TIMEOUT_REASON = "ecs-scheduler: stopped after timeoutSeconds={seconds}"
MISSING = "MISSING"
MISSING_GRACE_SECONDS = 120
"""A task ECS does not know is taken as ended only this long after its launch."""


@dataclass(frozen=True)
class ContainerDefinition:
    essential: bool
    log_group: str | None = None
    log_region: str | None = None
    log_prefix: str | None = None


class TaskDefinitions:
    """Container definitions per task definition ARN (a revision never changes): cached,
    bounded, so DescribeTaskDefinition is called once per revision seen."""

    def __init__(self, ecs: ECSClient, *, size: int, region: str | None) -> None:
        self._ecs = ecs
        self._size = size
        self._region = region
        self._cache: OrderedDict[str, dict[str, ContainerDefinition]] = OrderedDict()
        self._lock = threading.Lock()

    def containers(self, arn: str | None) -> dict[str, ContainerDefinition]:
        if not arn:
            return {}
        with self._lock:
            if arn in self._cache:
                self._cache.move_to_end(arn)
                return self._cache[arn]
        try:
            found = self._ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
        except (BotoCoreError, ClientError) as exc:
            logger.warning("task definition %s not described (no log links): %s", arn, exc)
            return {}
        definitions = {}
        for container in found.get("containerDefinitions", []):
            logs: dict[str, Any] = dict(container.get("logConfiguration") or {})
            options = (logs.get("options") or {}) if logs.get("logDriver") == "awslogs" else {}
            definitions[container["name"]] = ContainerDefinition(
                essential=container.get("essential", True),
                log_group=options.get("awslogs-group"),
                log_region=options.get("awslogs-region") or self._region,
                log_prefix=options.get("awslogs-stream-prefix"),
            )
        with self._lock:
            self._cache[arn] = definitions
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return definitions


def log_url(definition: ContainerDefinition, task_arn: str, container: str) -> str | None:
    """The CloudWatch console link of a container's awslogs stream (``prefix/name/task-id``);
    without a stream prefix the stream is named after the Docker id: link the group."""
    if not definition.log_group or not definition.log_region:
        return None
    region = definition.log_region
    link = (
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#logsV2:log-groups/log-group/{_console_escape(definition.log_group)}"
    )
    if definition.log_prefix:
        stream = f"{definition.log_prefix}/{container}/{task_arn.rsplit('/', 1)[-1]}"
        link += f"/log-events/{_console_escape(stream)}"
    return link


def _console_escape(value: str) -> str:
    """The CloudWatch console's fragment encoding: URL-encoded twice, ``%`` written ``$``."""
    return quote(quote(value, safe=""), safe="").replace("%", "$")


def task_outcome(
    known: TrackedTask, described: dict[str, Any], definitions: dict[str, ContainerDefinition]
) -> TrackedTask:
    """``known`` updated from a DescribeTasks task or an event's ``detail`` (same shape)."""
    arn = known.task_id
    containers = []
    for container in described.get("containers", []):
        name = container.get("name", "")
        definition = definitions.get(name)
        containers.append(
            ContainerOutcome(
                name=name,
                exit_code=container.get("exitCode"),
                reason=container.get("reason"),
                essential=None if definition is None or definition.essential else False,
                log_url=log_url(definition, arn, name) if definition else None,
            )
        )
    last_status = described.get("lastStatus")
    if last_status == "STOPPED" and described.get("desiredStatus", "STOPPED") != "STOPPED":
        # ECS sets desiredStatus STOPPED before a task stops; moto advances lastStatus on
        # every DescribeTasks while the task is still wanted RUNNING: not an end.
        last_status = "RUNNING"
    update: dict[str, Any] = {
        "last_status": last_status or known.last_status,
        "stop_code": described.get("stopCode"),
        "stopped_reason": described.get("stoppedReason") or None,
        "started_at": described.get("startedAt") or known.started_at,
        "stopped_at": described.get("stoppedAt"),
        "containers": containers or known.containers,
    }
    document = known.model_dump() | {k: v for k, v in update.items() if v is not None}
    task = TrackedTask.model_validate(document)
    if task.ended and task.started_at and task.stopped_at:
        task = task.model_copy(
            update={"duration_seconds": round((task.stopped_at - task.started_at).total_seconds(), 3)}
        )
    return task


def conclude(run: Run, now: datetime) -> Run:
    """``run`` with its end, once every task stopped (unchanged while any is in flight)."""
    if not run.tasks or not all(task.ended for task in run.tasks):
        return run
    status: RunStatus
    if any(task.timed_out for task in run.tasks):
        status = "timedOut"
    elif run.failures or not all(task.succeeded for task in run.tasks):
        status = "failed"
    else:
        status = "succeeded"
    starts = [task.started_at for task in run.tasks if task.started_at]
    stops = [task.stopped_at for task in run.tasks if task.stopped_at]
    duration = round((max(stops) - min(starts)).total_seconds(), 3) if starts and stops else None
    return run.model_copy(
        update={"status": status, "ended_at": max(stops) if stops else now, "duration_seconds": duration}
    )


class Tracker:
    """The leader's view of runs in flight; ``poll``, ``check_timeouts`` and ``apply_events``
    move their tasks forward and record each run's end once."""

    def __init__(
        self,
        *,
        store: TrackingStore,
        ecs: ECSClient,
        ecs_settings: ECSSettings,
        settings: TrackingSettings,
        notifier: Notifier,
    ) -> None:
        self._store = store
        self._ecs = ecs
        self._cluster = ecs_settings.cluster
        self._settings = settings
        self._notifier = notifier
        self._definitions = TaskDefinitions(
            ecs, size=settings.task_definition_cache_size, region=ecs.meta.region_name
        )
        self._runs: dict[str, Run] = {}
        self._by_task: dict[str, str] = {}
        self._lock = threading.RLock()  # the in-memory view
        self._writing = threading.Lock()  # one writer of run outcomes at a time
        self.describe_calls = 0

    # --- what is in flight ----------------------------------------------------------------

    def refresh(self) -> int:
        """Reload the open runs from the store (a new leader's first step); returns them."""
        with self._writing:  # no outcome written between the read and the swap
            runs: dict[str, Run] = {}
            after: str | None = None
            while True:
                page = self._store.open_runs(after=after, limit=1000)
                runs.update((run.run_id, run) for run in page)
                if len(page) < 1000:
                    break
                after = page[-1].run_id
            with self._lock:
                for run_id, mine in self._runs.items():  # keep what this replica learnt meanwhile
                    if run_id in runs and mine.in_flight:
                        runs[run_id] = mine
                self._runs = runs
                self._by_task = {task.task_id: run.run_id for run in runs.values() for task in run.tasks}
        return len(runs)

    def forget(self) -> None:
        """Leadership lost: the next leader tracks from the store."""
        with self._lock:
            self._runs.clear()
            self._by_task.clear()

    def add(self, job: Job | None, run: Run) -> None:
        """A fire just recorded ``run``: track it, or, if it failed at launch, report it."""
        if run.in_flight:
            with self._lock:
                self._runs[run.run_id] = run
                self._by_task.update((task.task_id, run.run_id) for task in run.tasks)
        elif run.failed:
            self._notifier.notify(job, run.job_id, run)

    @property
    def tasks_in_flight(self) -> int:
        with self._lock:
            return sum(1 for run in self._runs.values() for task in run.tasks if not task.ended)

    # --- polling ----------------------------------------------------------------------------

    def poll(self) -> int:
        """One DescribeTasks pass over tasks in flight (oldest runs first, bounded); returns
        the runs that ended."""
        with self._lock:
            runs = sorted(self._runs.values(), key=lambda run: run.scheduled_for)
            arns = [task.task_id for run in runs for task in run.tasks if not task.ended]
        arns = arns[: self._settings.max_describe_calls_per_poll * DESCRIBE_BATCH]
        described: list[Any] = []
        for start in range(0, len(arns), DESCRIBE_BATCH):
            batch = arns[start : start + DESCRIBE_BATCH]
            try:
                self.describe_calls += 1
                response = self._ecs.describe_tasks(cluster=self._cluster, tasks=batch)
            except (BotoCoreError, ClientError) as exc:
                logger.warning("DescribeTasks of %d tasks failed (next pass retries): %s", len(batch), exc)
                continue
            found = response.get("tasks", [])
            described += found
            # ECS answers each ARN with a task or a failure; one it does not know any more
            # (MISSING, or absent) ended without a trace: the run cannot wait for it for ever.
            answered = {task["taskArn"] for task in found} | {
                failure["arn"] for failure in response.get("failures", []) if failure.get("reason") != MISSING
            }
            described += [{"taskArn": arn, "lastStatus": MISSING} for arn in batch if arn not in answered]
        return self.apply(described)

    def check_timeouts(self, now: datetime | None = None) -> int:
        """StopTask every task running past its run's ``timeoutSeconds``; returns how many."""
        now = now or datetime.now(UTC)
        late: list[tuple[Run, TrackedTask]] = []
        with self._lock:
            for run in self._runs.values():
                if run.timeout_seconds is None:
                    continue
                launched = run.finished_at or run.claimed_at
                if now - launched < timedelta(seconds=run.timeout_seconds):
                    continue
                late += [(run, task) for task in run.tasks if not task.ended and not task.timed_out]
        for run, task in late:
            reason = TIMEOUT_REASON.format(seconds=run.timeout_seconds)
            try:
                self._ecs.stop_task(cluster=self._cluster, task=task.task_id, reason=reason)
            except (BotoCoreError, ClientError) as exc:
                logger.warning(
                    "job %s: StopTask of timed-out task %s failed: %s", run.job_id, task.task_id, exc
                )
                continue
            logger.info(
                "job %s: task %s ran past %d s; stopped", run.job_id, task.task_id, run.timeout_seconds
            )
            self._update_task(run.run_id, task.task_id, {"timed_out": True})
        return len(late)

    # --- applying what ECS reported ------------------------------------------------------------

    def apply(self, described: Iterable[dict[str, Any]]) -> int:
        """Fold DescribeTasks tasks or event details into the runs; returns the runs ended.
        One writer at a time (polling and events), so neither stores a stale copy of a run."""
        with self._writing:
            return self._apply(described)

    def _apply(self, described: Iterable[dict[str, Any]]) -> int:
        touched: dict[str, Run] = {}
        now = datetime.now(UTC)
        for task in described:
            arn = task.get("taskArn")
            with self._lock:
                run_id = self._by_task.get(arn or "")
                run = self._runs.get(run_id or "")
            if run is None or arn is None:
                continue
            run = touched.get(run.run_id, run)
            known = next((t for t in run.tasks if t.task_id == arn), None)
            if known is None:
                continue
            if task.get("lastStatus") == MISSING:
                if now - (run.finished_at or run.claimed_at) < timedelta(seconds=MISSING_GRACE_SECONDS):
                    continue  # ECS reads are eventually consistent: a new task may not show yet
                updated = known.model_copy(
                    update={
                        "last_status": "STOPPED",
                        "stopped_reason": "ECS no longer knows this task (MISSING)",
                    }
                )
            else:
                definitions = self._definitions.containers(task.get("taskDefinitionArn"))
                updated = task_outcome(known, task, definitions)
            if updated != known:
                tasks = [updated if t.task_id == arn else t for t in run.tasks]
                touched[run.run_id] = run.model_copy(update={"tasks": tasks})
        ended = 0
        for run in touched.values():
            ended += self._record(conclude(run, now))
        return ended

    def _update_task(self, run_id: str, arn: str, changes: dict[str, Any]) -> None:
        with self._writing:
            with self._lock:
                run = self._runs.get(run_id)
            if run is None:
                return
            tasks = [t.model_copy(update=changes) if t.task_id == arn else t for t in run.tasks]
            self._record(run.model_copy(update={"tasks": tasks}))

    def _record(self, run: Run) -> int:
        try:
            written = self._store.record_outcome(run)
        except SchedulerError as exc:
            logger.warning(
                "job %s: outcome of run %s not stored (retried next pass): %s", run.job_id, run.run_id, exc
            )
            return 0
        with self._lock:
            if not written or not run.in_flight:
                self._runs.pop(run.run_id, None)
                for task in run.tasks:
                    self._by_task.pop(task.task_id, None)
            else:
                self._runs[run.run_id] = run
        if not written or run.in_flight:
            return 0
        metrics.run_finished(
            run.status,
            task_durations=[t.duration_seconds for t in run.tasks if t.duration_seconds is not None],
            ended_at=run.ended_at or datetime.now(UTC),
            now=datetime.now(UTC),
        )
        codes = [c.exit_code for t in run.tasks for c in t.containers or []]
        logger.info(
            "job %s: run %s %s; exit codes %s, took %s s",
            run.job_id,
            run.run_id,
            run.status,
            codes,
            run.duration_seconds,
        )
        try:
            job: Job | None = self._store.get_job(run.job_id)
        except JobNotFoundError:
            job = None
        except SchedulerError as exc:
            logger.warning("job %s: read for notifying run %s failed: %s", run.job_id, run.run_id, exc)
            job = None
        self._notifier.notify(job, run.job_id, run)
        return 1


class TaskEvents:
    """The SQS queue an EventBridge rule fills with "ECS Task State Change" events."""

    def __init__(self, sqs: Any, queue: str, *, wait_seconds: int) -> None:
        self._sqs = sqs
        self._queue = queue
        self._wait = wait_seconds
        self._resolved: str | None = queue if queue.startswith(("https://", "http://")) else None

    @property
    def _url(self) -> str:
        """Looked up on first use, so a queue missing at start-up is retried, not fatal."""
        if self._resolved is None:
            self._resolved = str(self._sqs.get_queue_url(QueueName=self._queue)["QueueUrl"])
        return self._resolved

    def receive(self) -> tuple[list[dict[str, Any]], list[str]]:
        """Up to 10 events' task details, and the receipt handles to delete once applied.
        A message that is not a task state change is logged and deleted with them."""
        messages = self._sqs.receive_message(
            QueueUrl=self._url, MaxNumberOfMessages=10, WaitTimeSeconds=self._wait
        ).get("Messages", [])
        details = []
        for message in messages:
            detail = _task_detail(message.get("Body", ""))
            if detail is None:
                logger.warning(
                    "events queue message %s is not an ECS task state change; dropped", message["MessageId"]
                )
            else:
                details.append(detail)
        return details, [message["ReceiptHandle"] for message in messages]

    def delete(self, handles: list[str]) -> None:
        if handles:
            self._sqs.delete_message_batch(
                QueueUrl=self._url,
                Entries=[{"Id": str(i), "ReceiptHandle": handle} for i, handle in enumerate(handles)],
            )


def _task_detail(body: str) -> dict[str, Any] | None:
    """An EventBridge event's ``detail`` (raw, or wrapped by an SNS subscription)."""
    try:
        event = orjson.loads(body)
        if isinstance(event, dict) and event.get("Type") == "Notification":
            event = orjson.loads(event["Message"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    if not isinstance(event, dict) or event.get("detail-type") != "ECS Task State Change":
        return None
    detail = event.get("detail")
    return detail if isinstance(detail, dict) and "taskArn" in detail else None


def track_until(
    stop: threading.Event,
    tracker: Tracker,
    *,
    leading: Callable[[], bool],
    settings: TrackingSettings,
    events: bool,
) -> None:
    """The tracking loop, while leading: stop timed-out tasks and poll (with events: sweep,
    less often). The open runs are read from the store when leadership starts (a new leader
    carries on with its predecessor's runs) and again every ``sweep_interval_seconds``; in
    between, this replica's fires add their runs as they are recorded."""
    interval = settings.poll_interval_seconds
    sweep_every = settings.sweep_interval_seconds if events else interval
    last_sweep = last_refresh = float("-inf")
    was_leading = False
    while not stop.is_set():
        if not leading():
            if was_leading:
                tracker.forget()
            was_leading = False
            stop.wait(0.2)
            continue
        try:
            if not was_leading or time.monotonic() - last_refresh >= settings.sweep_interval_seconds:
                tracker.refresh()
                last_refresh = time.monotonic()
            was_leading = True
            tracker.check_timeouts()
            if time.monotonic() - last_sweep >= sweep_every:
                last_sweep = time.monotonic()
                tracker.poll()
        except SchedulerError as exc:
            logger.warning("tracking pass failed (%s); next pass in %.0f s", exc.message, interval)
        stop.wait(interval)


def consume_events(
    stop: threading.Event, tracker: Tracker, events: TaskEvents, *, leading: Callable[[], bool]
) -> None:
    """Apply task state change events as they arrive, while leading."""
    while not stop.is_set():
        if not leading():
            stop.wait(0.5)
            continue
        try:
            details, handles = events.receive()
            tracker.apply(details)  # tasks of runs not tracked (yet) are left to the sweep
            events.delete(handles)
        except (BotoCoreError, ClientError) as exc:
            logger.warning("task events queue failed: %s; retrying", exc)
            stop.wait(1.0)
        except (SchedulerError, ValidationError) as exc:
            logger.warning("task events not applied (%s); they will be delivered again", exc)
            stop.wait(1.0)
