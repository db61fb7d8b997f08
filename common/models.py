"""The Job schema family, the change event, runs and leases.

``JobCreate`` and ``JobUpdate`` validate what users send (strict JSON types, unknown fields
rejected); ``Job`` is what is stored and served. JSON keeps the spec's camelCase through aliases;
documents are dumped without unset fields. Cross-field rules live in ``new_job`` and
``apply_update`` so a create and a partial update are checked the same way.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from common import schedule as schedule_syntax
from common.errors import InvalidJobError

MAX_TASKS_PER_FIRE = 50
MAX_USER_TAGS = 48  # ECS allows 50 tags per task; scheduld adds its own attribution tags
MAX_OVERRIDES_CHARS = 8192  # ECS limit on the size of containerOverrides
MAX_JITTER_SECONDS = 86400  # EventBridge's widest flexible time window (1440 minutes)
MAX_DEADLINE_SECONDS = 7 * 86400
MAX_RUN_HISTORY = 10000
READ_ONLY_FIELDS = frozenset(
    {
        "lastRun",
        "lastRunTasks",
        "lastRunFailures",
        "estimatedNextRun",
        "link",
        "lastRunStatus",
        "lastSuccess",
        "lastFailure",
        "consecutiveFailures",
        "createdBy",
        "suspendedReason",
    }
)
_STATUS_FIELDS: set[str] = {
    "last_run",
    "last_run_tasks",
    "last_run_failures",
    "estimated_next_run",
    "last_run_status",
    "last_success",
    "last_failure",
    "consecutive_failures",
}
MAX_TIMEOUT_SECONDS = 14 * 24 * 3600

MAX_MESSAGES_PER_TASK = 1_000_000
_NO_NUL = r"^[^\x00]*$"  # NUL ends C strings: ECS, SQLite tooling and logs would cut the value

Name = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_-]+$")]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=_NO_NUL)]
Text = Annotated[str, StringConstraints(pattern=_NO_NUL)]
# The parser enforces these with its own messages; the OpenAPI document states them.
ScheduleText = Annotated[
    str,
    Field(
        json_schema_extra={
            "minLength": 1,
            "maxLength": schedule_syntax.MAX_LENGTH,
            "pattern": schedule_syntax.SYNTAX_PATTERN,
        }
    ),
]
QueueName = Annotated[
    str, StringConstraints(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_-]+(\.fifo)?$")
]
EnvName = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[^=\s\x00]+$")]
TaskCount = Annotated[int, Field(ge=1, le=MAX_TASKS_PER_FIRE)]


def _utc(value: datetime) -> datetime:
    """An ISO-8601 time without an offset means UTC, the API's only zone for times."""
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError as exc:  # 0001-01-01T00:00+01:00 is before year 1 in UTC
        raise ValueError("out of range once converted to UTC (years 1 to 9999)") from exc


Timestamp = Annotated[datetime, AfterValidator(_utc)]


@functools.cache
def _known_timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) | {"UTC"}


def _timezone_name(value: str) -> str:
    if value not in _known_timezones():
        raise ValueError(f"unknown IANA timezone {value!r}")
    return value


TimezoneName = Annotated[str, AfterValidator(_timezone_name)]


class ApiModel(BaseModel):
    """camelCase on the wire, snake_case in Python, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        str_strip_whitespace=False,
    )

    def to_document(self) -> dict[str, Any]:
        """JSON-ready dict with API names and no unset (None) fields."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class ContainerOverride(ApiModel):
    container_name: Name
    environment: Annotated[dict[EnvName, Text], Field(max_length=100)] | None = None
    command: Annotated[list[Text], Field(max_length=100)] | None = None


class SQSTrigger(ApiModel):
    """Start tasks only while an SQS queue holds messages, scaled by its depth."""

    type: Literal["sqs"]
    queue_name: QueueName
    messages_per_task: Annotated[int, Field(ge=1, le=MAX_MESSAGES_PER_TASK)] | None = None


Trigger = Annotated[SQSTrigger, Field(discriminator="type")]
"""Every trigger type, told apart by ``type``: a new one is a model with its own ``type``
literal added here as ``SQSTrigger | NewTrigger`` (and a checker in scheduld/triggers.py)."""
TRIGGER_TYPES = frozenset({"sqs"})


class AwsVpcConfiguration(ApiModel):
    subnets: Annotated[list[ShortText], Field(min_length=1, max_length=16)]
    security_groups: Annotated[list[ShortText], Field(max_length=5)] | None = None
    assign_public_ip: Literal["ENABLED", "DISABLED"] | None = None


class NetworkConfiguration(ApiModel):
    awsvpc_configuration: AwsVpcConfiguration


class CapacityProviderStrategyItem(ApiModel):
    capacity_provider: ShortText
    weight: Annotated[int, Field(ge=0, le=1000)] | None = None
    base: Annotated[int, Field(ge=0, le=100000)] | None = None


class Tag(ApiModel):
    key: Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=_NO_NUL)]
    value: Annotated[str, StringConstraints(max_length=256, pattern=_NO_NUL)] = ""

    @field_validator("key")
    @classmethod
    def _not_aws_prefixed(cls, key: str) -> str:
        if key.lower().startswith("aws:"):
            raise ValueError("tag keys starting with 'aws:' are reserved by AWS")
        return key


class LaunchedTask(ApiModel):
    task_id: str
    host_id: str | None = None


class LaunchFailure(ApiModel):
    """A RunTask failure as ECS reported it (or the error that stopped the launch)."""

    reason: str
    detail: str | None = None
    arn: str | None = None


class RetryPolicy(ApiModel):
    """EventBridge's retry policy for failed launches; unset limits take the server defaults."""

    maximum_retry_attempts: Annotated[int, Field(ge=0, le=185)] | None = None
    maximum_event_age_seconds: Annotated[int, Field(ge=60, le=86400)] | None = None


SqsArn = Annotated[
    str,
    StringConstraints(pattern=r"^arn:aws[a-z-]*:sqs:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,80}(\.fifo)?$"),
]


class DeadLetterQueue(ApiModel):
    """Where a run that exhausted its retries is reported: an SQS queue by name or ARN."""

    queue_name: QueueName | None = None
    arn: SqsArn | None = None

    @model_validator(mode="after")
    def _one_target(self) -> DeadLetterQueue:
        if (self.queue_name is None) == (self.arn is None):
            raise ValueError("give exactly one of queueName and arn")
        return self


_SNS_TOPIC_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$")
_SQS_QUEUE = re.compile(
    r"^(https?://[^\s/]+/\d{12}/[A-Za-z0-9_-]{1,80}(\.fifo)?"
    r"|arn:aws[a-z-]*:sqs:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,80}(\.fifo)?)$"
)


def _notify_target(value: str) -> str:
    if not (_SNS_TOPIC_ARN.match(value) or _SQS_QUEUE.match(value)):
        raise ValueError("must be an SNS topic ARN, or an SQS queue URL or ARN")
    return value


NotifyTarget = Annotated[str, StringConstraints(max_length=1024), AfterValidator(_notify_target)]
"""An SNS topic ARN, or an SQS queue (its URL or ARN)."""


class Notify(ApiModel):
    """Where one JSON document per finished run goes: SNS topic ARNs or SQS queues."""

    on_failure: Annotated[list[NotifyTarget], Field(max_length=10)] | None = None
    on_success: Annotated[list[NotifyTarget], Field(max_length=10)] | None = None


class _UserFields(ApiModel):
    """Every field a user may set; all optional here, required ones tightened below."""

    task_definition: Name | None = None
    schedule: ScheduleText | None = None
    schedule_start: Timestamp | None = None
    schedule_end: Timestamp | None = None
    timezone: TimezoneName | None = None
    task_count: TaskCount | None = None
    max_count: TaskCount | None = None
    trigger: Trigger | None = None
    suspended: bool | None = None
    overrides: Annotated[list[ContainerOverride], Field(max_length=10)] | None = None
    launch_type: Literal["EC2", "FARGATE", "EXTERNAL", "MANAGED_INSTANCES"] | None = None
    capacity_provider_strategy: (
        Annotated[list[CapacityProviderStrategyItem], Field(min_length=1, max_length=20)] | None
    ) = None
    platform_version: ShortText | None = None
    network_configuration: NetworkConfiguration | None = None
    group: ShortText | None = None
    tags: Annotated[list[Tag], Field(max_length=MAX_USER_TAGS)] | None = None
    propagate_tags: Literal["TASK_DEFINITION", "SERVICE", "NONE"] | None = None
    enable_execute_command: bool | None = None
    jitter_seconds: Annotated[int, Field(ge=0, le=MAX_JITTER_SECONDS)] | None = None
    overlap_policy: Literal["topUp", "skip", "allow", "replace"] | None = None
    starting_deadline_seconds: Annotated[int, Field(ge=1, le=MAX_DEADLINE_SECONDS)] | None = None
    catch_up_policy: Literal["coalesce", "all"] | None = None
    run_history_limit: Annotated[int, Field(ge=1, le=MAX_RUN_HISTORY)] | None = None
    retry_policy: RetryPolicy | None = None
    dead_letter_queue: DeadLetterQueue | None = None
    suspend_after_failures: Annotated[int, Field(ge=1, le=1000)] | None = None

    timeout_seconds: Annotated[int, Field(ge=1, le=MAX_TIMEOUT_SECONDS)] | None = None
    notify: Notify | None = None


class JobCreate(_UserFields):
    """Body of POST /jobs."""

    model_config = ConfigDict(strict=True)

    task_definition: Name
    schedule: ScheduleText
    id: Name | None = None


class JobUpdate(_UserFields):
    """Body of PUT /jobs/{id}: only the given fields change; ``null`` clears an optional one."""

    model_config = ConfigDict(strict=True)

    id: Name | None = None


class JobStatus(ApiModel):
    """The fields scheduld manages; written apart from user fields so neither clobbers the other."""

    last_run: Timestamp | None = None
    last_run_tasks: list[LaunchedTask] | None = None
    last_run_failures: list[LaunchFailure] | None = None
    estimated_next_run: Timestamp | None = None
    last_run_status: str | None = None
    last_success: Timestamp | None = None
    last_failure: Timestamp | None = None
    consecutive_failures: int | None = None

    def changes(self) -> dict[str, Any]:
        """The fields given explicitly, API names → JSON value (None: remove the field)."""
        dumped = self.model_dump(mode="json", by_alias=True, include=self.model_fields_set)
        return dict(dumped)


class Job(_UserFields):
    """A stored job: user fields plus the status scheduld manages."""

    model_config = ConfigDict(extra="ignore")

    id: Name
    task_definition: Name
    schedule: str
    task_count: TaskCount = 1
    created_by: Annotated[
        str | None,
        Field(description="The principal that created the job", json_schema_extra={"readOnly": True}),
    ] = None
    suspended_reason: str | None = None  # set by scheduld (suspendAfterFailures), read-only
    last_run: Timestamp | None = None
    last_run_tasks: list[LaunchedTask] | None = None
    last_run_failures: list[LaunchFailure] | None = None
    estimated_next_run: Timestamp | None = None
    last_run_status: str | None = None
    last_success: Timestamp | None = None
    last_failure: Timestamp | None = None
    consecutive_failures: int | None = None

    @property
    def timing(self) -> schedule_syntax.Timing:
        """What decides when it fires (schedule, timezone, window, jitter keyed on its id)."""
        jittered = bool(self.jitter_seconds)
        return schedule_syntax.Timing(
            self.schedule,
            self.timezone,
            self.schedule_start,
            self.schedule_end,
            self.jitter_seconds if jittered else None,
            self.id if jittered else "",
        )

    @property
    def status(self) -> JobStatus:
        """The scheduld-managed fields alone (what ``JobStore.update_status`` writes)."""
        return JobStatus.model_validate(self.model_dump(include=_STATUS_FIELDS))

    def user_document(self) -> dict[str, Any]:
        """The user-owned part of the document (no status fields)."""
        return self.model_dump(
            mode="json",
            by_alias=True,
            exclude_none=True,
            exclude=_STATUS_FIELDS,
        )

    @property
    def expected_task_count(self) -> int:
        """Tasks a plain (trigger-less) firing wants: min(taskCount, maxCount), at most 50."""
        wanted = self.task_count if self.max_count is None else min(self.task_count, self.max_count)
        return min(wanted, MAX_TASKS_PER_FIRE)


ChangeOp = Literal["add", "modify", "remove", "run"]
"""run: requested runs (run now, backfill) wait in the store for the leader."""


class ChangeEvent(ApiModel):
    """webapi → scheduld: a job was added, modified or removed; scheduld re-reads the store."""

    model_config = ConfigDict(extra="ignore")

    op: ChangeOp
    job_id: Name
    sent_at: Timestamp = Field(default_factory=lambda: datetime.now(UTC))

    def to_json(self) -> str:
        return orjson.dumps(self.to_document()).decode()


M = TypeVar("M", bound=ApiModel)


# --- building and changing jobs -------------------------------------------------------------


def parse_create(body: bytes | str | Mapping[str, Any]) -> JobCreate:
    """Validate a POST body; InvalidJobError names each bad field."""
    return _validate(JobCreate, body)


def parse_update(body: bytes | str | Mapping[str, Any]) -> JobUpdate:
    """Validate a PUT body; InvalidJobError names each bad field."""
    return _validate(JobUpdate, body)


def new_job(
    create: JobCreate,
    *,
    min_interval: float = schedule_syntax.MIN_INTERVAL_SECONDS,
    created_by: str | None = None,
) -> Job:
    """The job a create request stores: id defaults to taskDefinition, taskCount to 1, and
    each ``?`` of the schedule resolved (the choice is made here, once, and stored);
    ``created_by`` names the principal (job quotas count by it)."""
    data = create.model_dump(exclude_none=True)
    data["id"] = create.id or create.task_definition
    if created_by is not None:
        data["created_by"] = created_by
    return _checked(Job.model_validate(data), schedule_changed=True, min_interval=min_interval)


def apply_update(
    job: Job, update: JobUpdate, *, min_interval: float = schedule_syntax.MIN_INTERVAL_SECONDS
) -> Job:
    """The job after a partial update: given fields replace, ``null`` clears optional ones."""
    given = update.model_fields_set
    if "id" in given and update.id is not None and update.id != job.id:
        raise InvalidJobError({"id": f"cannot be changed (job is {job.id})"})
    errors = {
        _alias(name): "cannot be cleared; it is required"
        for name in ("task_definition", "schedule")
        if name in given and getattr(update, name) is None
    }
    if errors:
        raise InvalidJobError(errors)
    data = job.model_dump(exclude_none=True)
    if "suspended" in given and not update.suspended:
        data.pop("suspended_reason", None)  # resumed: the reason no longer holds
    for name in given - {"id"}:
        value = getattr(update, name)
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    data.setdefault("task_count", 1)
    schedule_changed = bool(given & {"schedule", "timezone"})
    return _checked(
        Job.model_validate(data),
        schedule_changed=schedule_changed,
        min_interval=min_interval,
        end_changed="schedule_end" in given,
    )


def _checked(job: Job, *, schedule_changed: bool, min_interval: float, end_changed: bool = True) -> Job:
    """The job as stored: a new or changed schedule has its ``?`` resolved and is parsed once
    (it must build a trigger that fires, no more often than ``min_interval``); rules that span
    fields are checked. Only on writes, so stored jobs always load."""
    errors: dict[str, str] = {}
    if end_changed and job.schedule_end is not None and job.schedule_end <= datetime.now(UTC):
        errors["scheduleEnd"] = "is in the past: the job would never fire"
    if schedule_changed:
        try:
            resolved = schedule_syntax.validate_schedule(
                job.schedule, timezone=job.timezone, min_interval=min_interval
            )
        except schedule_syntax.ScheduleError as exc:
            errors["schedule"] = str(exc)
        else:
            if resolved != job.schedule:
                job = job.model_copy(update={"schedule": resolved})
    if job.schedule_start and job.schedule_end and job.schedule_end <= job.schedule_start:
        errors["scheduleEnd"] = "must be later than scheduleStart"
    if job.launch_type and job.capacity_provider_strategy:
        errors["capacityProviderStrategy"] = (
            "cannot be combined with launchType (ECS accepts one or the other)"
        )
    if job.overrides:
        size = len(orjson.dumps([o.to_document() for o in job.overrides]))
        if size > MAX_OVERRIDES_CHARS:
            errors["overrides"] = f"too large ({size} characters; ECS allows {MAX_OVERRIDES_CHARS})"
        names = [o.container_name for o in job.overrides]
        if len(names) != len(set(names)):
            errors["overrides"] = "each containerName may appear only once"
    if errors:
        raise InvalidJobError(errors)
    return job


def _validate(model: type[M], body: bytes | str | Mapping[str, Any]) -> M:
    try:
        if isinstance(body, Mapping):
            return model.model_validate(_without_read_only(body))
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidJobError({"body": f"not valid JSON ({exc})"}) from exc
    except ValidationError as exc:
        raise InvalidJobError(field_errors(exc)) from exc
    if not isinstance(document, dict):
        raise InvalidJobError({"body": "must be a JSON object"})
    document = _without_read_only(document)
    try:
        encoded = orjson.dumps(document)
    except orjson.JSONEncodeError as exc:  # nested deeper than orjson encodes (254 levels)
        raise InvalidJobError(_too_deep(document)) from exc
    try:
        return model.model_validate_json(encoded)
    except ValidationError as exc:
        raise InvalidJobError(field_errors(exc)) from exc


def _too_deep(document: Mapping[str, Any]) -> dict[str, str]:
    """Name the top-level fields whose values cannot be re-encoded (too deeply nested)."""
    errors: dict[str, str] = {}
    for key, value in document.items():
        try:
            orjson.dumps({key: value})  # at the depth it has in the document
        except orjson.JSONEncodeError:
            errors[str(key)[:64]] = "nested too deeply"
    return errors or {"body": "nested too deeply"}


def _without_read_only(document: Mapping[str, Any]) -> dict[str, Any]:
    """Fields clients get back but cannot set are ignored, so GET → edit → PUT works."""
    return {key: value for key, value in document.items() if key not in READ_ONLY_FIELDS}


def field_errors(exc: ValidationError) -> dict[str, str]:
    """Pydantic errors as {dotted API field path: reason}."""
    errors: dict[str, str] = {}
    for error in exc.errors(include_url=False):
        path = _path(error["loc"])
        reason = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
        reason = reason.removeprefix("Value error, ")
        if error["type"] in {"union_tag_invalid", "union_tag_not_found"}:  # a trigger's ``type``
            path = f"{path}.type"
            reason = f"must be one of: {', '.join(sorted(TRIGGER_TYPES))}"
        errors.setdefault(path, reason)
    return errors


def _path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in TRIGGER_TYPES:  # discriminator tags add no information for users
            continue
        else:
            path += f".{part}" if path else str(part)
    return path or "body"


def _alias(name: str) -> str:
    return to_camel(name)


# --- runs and leadership (exactly-once firing) ---------------------------------------------

RunStatus = Literal[
    "requested",  # a manual or backfill run waiting for the leader
    "claimed",
    "launched",
    "partially_launched",
    "failed",
    "skipped",
    "missed",  # could not start within the job's startingDeadlineSeconds; nothing launched
    "retrying",  # its launch failed; the next attempt is due at nextAttemptAt
    "throttled",  # over quotas.tasks_per_minute; nothing launched
    "succeeded",
    "timedOut",
]
RunTrigger = Literal["schedule", "manual", "backfill"]


class Attempt(ApiModel):
    """One launch attempt of a run (the first, then each retry of a failed launch).

    ``round`` picks the RunTask client tokens: it moves on after a definite failure and stays
    when the outcome was unknown (a timeout), so ECS returns what that call did if it landed.
    """

    at: Timestamp
    wanted: int
    started: int = 0
    round: int = 0
    uncertain: bool = False
    failures: list[LaunchFailure] = Field(default_factory=list)


OPEN_RUN_STATUSES: tuple[RunStatus, ...] = ("launched", "partially_launched")
"""Runs whose tasks are still tracked: their outcome is not known yet."""
FAILED_RUN_STATUSES: tuple[RunStatus, ...] = ("failed", "timedOut")


class ContainerOutcome(ApiModel):
    """How one container of a task ended, as ECS reported it."""

    name: str
    exit_code: int | None = None
    reason: str | None = None
    essential: bool | None = None
    """False for a container the task definition marks non-essential (its exit is not judged)."""
    log_url: str | None = None
    """The container's CloudWatch Logs stream, when its task definition uses awslogs."""


class TrackedTask(LaunchedTask):
    """A task a run launched and, once ECS reported it stopped, how it ended."""

    last_status: str | None = None
    stop_code: str | None = None
    stopped_reason: str | None = None
    started_at: Timestamp | None = None
    stopped_at: Timestamp | None = None
    duration_seconds: float | None = None
    containers: list[ContainerOutcome] | None = None
    timed_out: bool | None = None
    """True when scheduld stopped it for running past the job's ``timeoutSeconds``."""

    @property
    def ended(self) -> bool:
        return self.last_status == "STOPPED"

    @property
    def succeeded(self) -> bool:
        """Stopped with every essential container exited 0 (ECS's own verdict on a batch task)."""
        if not self.ended or self.timed_out or self.stop_code not in (None, "EssentialContainerExited"):
            return False
        codes = [c.exit_code for c in self.containers or [] if c.essential is not False]
        return bool(codes) and all(code == 0 for code in codes)


class RunBase(ApiModel):
    """What happened at one scheduled fire of one job (the part the API serves): its launch
    and, when it launched tasks, how each task ended.

    ``status`` goes claimed → launched / partially_launched / failed / skipped at launch; then
    launched and partially_launched runs end as succeeded, failed or timedOut once their tasks
    stopped.
    """

    model_config = ConfigDict(extra="ignore")

    job_id: Name
    scheduled_for: Timestamp
    coalesced_from: Timestamp | None = None
    status: RunStatus = "claimed"
    expected: int | None = None
    running: int | None = None
    started: int | None = None
    tasks: list[TrackedTask] = Field(default_factory=list)
    failures: list[LaunchFailure] = Field(default_factory=list)
    error: str | None = None
    timeout_seconds: int | None = None
    """The job's ``timeoutSeconds`` when it fired: tasks running longer (from launch) are stopped."""
    claimed_at: Timestamp = Field(default_factory=lambda: datetime.now(UTC))
    finished_at: Timestamp | None = None
    trigger: RunTrigger | None = None  # unset: a scheduled fire
    principal: str | None = None
    task_count: TaskCount | None = None  # manual runs: this run's taskCount
    overrides: list[ContainerOverride] | None = None  # manual runs: this run's overrides
    idempotency_key: str | None = None
    stopped: list[str] | None = None  # overlapPolicy replace: the tasks stopped first
    attempts: list[Attempt] | None = None
    next_attempt_at: Timestamp | None = None
    ended_at: Timestamp | None = None
    """When the run's outcome became known (its last task stopped)."""
    duration_seconds: float | None = None
    """From the first task's start to the last task's stop."""

    @field_validator("tasks", mode="before")
    @classmethod
    def _launched_tasks(cls, value: Any) -> Any:
        """A LaunchedTask (what RunTask returned) is a TrackedTask with nothing learnt yet."""
        if isinstance(value, list):
            return [
                t.model_dump() if isinstance(t, LaunchedTask) and not isinstance(t, TrackedTask) else t
                for t in value
            ]
        return value

    @property
    def in_flight(self) -> bool:
        return self.status in OPEN_RUN_STATUSES

    @property
    def failed(self) -> bool:
        return self.status in FAILED_RUN_STATUSES


class Run(RunBase):
    """One scheduled fire of one job: claimed once (create-if-absent), then finished, then
    (when it launched tasks) tracked until every task stopped.

    ``coalescedFrom`` is the earliest missed fire time this run stands for, when missed
    fires were collapsed into it (after downtime or a failover). ``replica`` and ``token``
    (the lease's fencing token) are internal: the API serves ``RunPublic``.
    """

    replica: str
    token: int

    @property
    def run_id(self) -> str:
        return run_id(self.job_id, self.scheduled_for)


class RunPublic(RunBase):
    """A run as the API serves it: without the fencing token or the replica."""

    @classmethod
    def of(cls, run: Run) -> RunPublic:
        return cls.model_validate(run.model_dump(include=set(cls.model_fields)))


def run_id(job_id: str, scheduled_for: datetime) -> str:
    """``<job id>@<scheduled UTC time>``: the unique key of a fire."""
    return f"{job_id}@{scheduled_for.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}"


class RunRequest(ApiModel):
    """Body of POST /jobs/{id}/runs (optional): this run's taskCount and overrides."""

    model_config = ConfigDict(strict=True)

    task_count: TaskCount | None = None
    overrides: Annotated[list[ContainerOverride], Field(max_length=10)] | None = None


class BackfillRequest(ApiModel):
    """Body of POST /jobs/{id}/backfill: one run per fire time in [start, end]."""

    model_config = ConfigDict(strict=True)

    start: Timestamp
    end: Timestamp


def parse_run_request(body: bytes) -> RunRequest:
    """An empty body asks for the job as it is; InvalidJobError names each bad field."""
    return _validate(RunRequest, body) if body.strip() else RunRequest()


def parse_backfill(body: bytes) -> BackfillRequest:
    request = _validate(BackfillRequest, body)
    if request.end <= request.start:
        raise InvalidJobError({"end": "must be later than start"})
    if request.end > datetime.now(UTC):
        raise InvalidJobError(
            {"end": "must not be in the future: a backfill runs fire times that have passed"}
        )
    return request


def parse_run_id(job_id: str, value: str) -> datetime | None:
    """The scheduled time named by a run id ``<job id>@<UTC time>``; None if it is not one."""
    prefix, _, moment = value.rpartition("@")
    if prefix != job_id:
        return None
    try:
        return _utc(datetime.strptime(moment, "%Y-%m-%dT%H:%M:%S.%fZ"))
    except ValueError:
        return None


def outcome_status(previous: Job | JobStatus, run: Run) -> JobStatus:
    """The job's status fields once ``run`` ended (succeeded, failed or timedOut)."""
    when = run.ended_at or run.finished_at or datetime.now(UTC)
    failures = previous.consecutive_failures or 0
    if run.failed:
        return JobStatus(last_run_status=run.status, last_failure=when, consecutive_failures=failures + 1)
    return JobStatus(last_run_status=run.status, last_success=when, consecutive_failures=0)


class Lease(ApiModel):
    """Who leads: ``token`` grows with every change of holder (a fencing token)."""

    name: str
    holder: str
    token: int
    expires_at: Timestamp
