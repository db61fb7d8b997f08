"""Settings: the defaults of the models below (the one source of defaults), overlaid by
config/config_{run_env}.yaml, then the environment (nested with ``__``, e.g.
``STORE__BACKEND=elasticsearch``), then init kwargs. ``run_env`` (``RUN_ENV``) is read once,
through those same sources, and picks the overlay.

``load_settings()`` is the only caller of ``Settings()``; entry points pass the result down.
``AWS_*`` variables belong to boto3 and are not mirrored here.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from common.models import NotifyTarget

CONFIG_DIR_ENV = "ECSS_CONFIG_DIR"
_DEFAULT_CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
_STARTED_BY = re.compile(r"^[A-Za-z0-9_/-]{1,19}$")

Seconds = Annotated[float, Field(gt=0)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SQLiteSettings(_Section):
    path: Path = Path("data/ecs-scheduler.db")
    busy_timeout_seconds: Seconds = 10.0


class ElasticsearchSettings(_Section):
    flavour: Literal["elasticsearch", "opensearch"] = "elasticsearch"
    hosts: list[str] = Field(default_factory=lambda: ["http://127.0.0.1:9200"])
    index: str = "ecs-scheduler-jobs"
    request_timeout_seconds: Seconds = 10.0
    max_retries: Annotated[int, Field(ge=0, le=10)] = 2
    client_options: dict[str, Any] = Field(default_factory=dict)
    """Other keyword arguments of the client library; never the two typed settings above."""

    @field_validator("client_options")
    @classmethod
    def _no_typed_setting(cls, options: dict[str, Any]) -> dict[str, Any]:
        shadowed = sorted(set(options) & {"request_timeout", "timeout", "max_retries"})
        if shadowed:
            raise ValueError(
                f"{', '.join(shadowed)} would override request_timeout_seconds/max_retries: set those"
            )
        return options


class StoreSettings(_Section):
    backend: Literal["sqlite", "elasticsearch"] = "sqlite"
    sqlite: SQLiteSettings = Field(default_factory=SQLiteSettings)
    elasticsearch: ElasticsearchSettings = Field(default_factory=ElasticsearchSettings)


class SQSSettings(_Section):
    queue_name: str = "ecs-scheduler-ops"
    queue_url: str | None = None
    dead_letter_queue_name: str = "ecs-scheduler-ops-dlq"
    create_queues: bool = True
    max_receive_count: Annotated[int, Field(ge=1, le=1000)] = 5
    wait_seconds: Annotated[int, Field(ge=0, le=20)] = 10
    visibility_timeout_seconds: Annotated[int, Field(ge=0, le=43200)] = 60


class ECSSettings(_Section):
    cluster: str = "default"
    started_by: str = "ecs-scheduler"
    tasks_events_queue: str | None = None
    """SQS queue (name or URL) fed by an EventBridge rule for "ECS Task State Change": task
    ends arrive as events, and polling only sweeps what events missed."""

    @field_validator("started_by")
    @classmethod
    def _started_by_fits(cls, value: str) -> str:
        """ECS startedBy holds 36 characters; we append '/' and a 16-character job hash."""
        if not _STARTED_BY.match(value):
            raise ValueError("1-19 characters of letters, digits, '-', '_' or '/'")
        return value


class CORSSettings(_Section):
    """Origins whose browser pages may call the API (none unless listed; ``*`` for any)."""

    allow_origins: list[str] = Field(default_factory=list)


class LimitsSettings(_Section):
    """What one client can make webapi do (README "Limits and quotas")."""

    # Total time a request may take; then 503 naming what it waited on (store or queue).
    request_deadline_seconds: Seconds = 5.0
    # Jobs stored in all (0: no limit), and per principal when auth.mode is tokens (0: none).
    max_jobs: Annotated[int, Field(ge=0)] = 10000
    max_jobs_per_principal: Annotated[int, Field(ge=0)] = 1000
    # Writes (POST/PUT/DELETE) per principal, or per client address without auth (bursts of a
    # scripted client pass; a flood is held to ~50 writes a second on average), in the
    # ``limits`` library's notation ("100/second;3000/minute"); empty: no limit.
    write_rate: str = "100/second;3000/minute"

    @field_validator("write_rate")
    @classmethod
    def _parses(cls, value: str) -> str:
        if value.strip():
            from limits import parse_many

            parse_many(value)  # ValueError names what does not parse
        return value.strip()


class RelaySettings(_Section):
    """The outbox relay: change events recorded with each write, sent to SQS by every webapi."""

    # Events claimed per round (sent as SendMessageBatch calls of up to 10 messages).
    batch_size: Annotated[int, Field(ge=1, le=1000)] = 100
    # Change events packed into one SQS message (``{"events": [...]}``; 1: one event per
    # message, the seed's shape). Fewer messages: less SQS work per change on both sides (at
    # most about 32 KiB of events a message, far below SQS's 256 KiB).
    events_per_message: Annotated[int, Field(ge=1, le=100)] = 100
    # A claimed event not sent within this is claimed again (by any replica): the bound on
    # how long a crashed relay delays an event.
    claim_seconds: Annotated[float, Field(gt=0, le=300)] = 10.0
    # How often the relay looks for events written by other replicas or left by a crash;
    # events written by this process are sent at once.
    poll_seconds: Annotated[float, Field(gt=0, le=60)] = 1.0
    # Longest pause between rounds while SQS keeps failing (backoff doubles up to it).
    max_backoff_seconds: Annotated[float, Field(gt=0, le=300)] = 10.0
    # While writes keep coming, rounds start at least this far apart, so each SendMessageBatch
    # carries the events of many writes (an idle relay still sends a first event at once).
    linger_seconds: Annotated[float, Field(ge=0, le=1)] = 0.05


class WebAPISettings(_Section):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 5000
    max_body_bytes: Annotated[int, Field(ge=1024)] = 65536
    cors: CORSSettings = Field(default_factory=CORSSettings)
    # Host headers served (Starlette's TrustedHostMiddleware, against DNS rebinding); empty: any.
    allowed_hosts: list[str] = Field(default_factory=list)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    relay: RelaySettings = Field(default_factory=RelaySettings)


Role = Literal["read", "write", "run", "admin"]


class JWTSettings(_Section):
    """Bearer JWTs from an OIDC provider, checked against its published keys (JWKS)."""

    issuer: str | None = None
    audience: str | None = None
    jwks_url: str | None = None
    jwks_file: Path | None = None
    # Dotted path of the claim holding role or group names (e.g. ``realm_access.roles``).
    roles_claim: str = "roles"
    # Claim value → roles it grants; values that are role names grant that role anyway.
    role_mapping: dict[str, list[Role]] = Field(default_factory=dict)
    # Optional claim holding taskDefinition globs that scope the token (absent: all).
    task_definitions_claim: str | None = None
    algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256"])
    leeway_seconds: Annotated[float, Field(ge=0)] = 30.0

    @property
    def enabled(self) -> bool:
        return self.jwks_url is not None or self.jwks_file is not None


class AuthSettings(_Section):
    mode: Literal["none", "tokens"] = "none"
    tokens_file: Path | None = None
    jwt: JWTSettings = Field(default_factory=JWTSettings)
    # Task definitions any job may name, in every mode (globs); default all.
    allowed_task_definitions: list[str] = Field(default_factory=lambda: ["*"])
    # Environment override names whose values only admin principals see (globs, any case).
    redact_environment: list[str] = Field(
        default_factory=lambda: ["*PASSWORD*", "*SECRET*", "*TOKEN*", "*KEY*"]
    )


class AWSSettings(_Section):
    """Timeouts of every boto3 client (common/aws.py): no call waits unbounded. Retry mode
    and attempts are the ``retry`` section's."""

    connect_timeout_seconds: Seconds = 2.0
    read_timeout_seconds: Seconds = 10.0
    publish_timeout_seconds: Seconds = 2.0
    """How long a write waits for its SQS publish before answering 503 (the write stands)."""
    ecs_read_timeout_seconds: Seconds = 5.0
    """Read timeout of one ECS call in scheduld (with ``retry.aws_max_attempts`` attempts)."""


class QuotaSettings(_Section):
    """Limits that bound the damage one job (or all of them) can do."""

    min_fire_interval_seconds: Annotated[float, Field(ge=1)] = 1.0
    """Shortest time between two fires of one job (the schedule syntax's finest is 1 s)."""
    tasks_per_minute: Annotated[int, Field(ge=0)] = 0
    """Most tasks scheduld launches in any minute, all jobs together; 0 means no cap. Fires
    beyond it are recorded as runs with status ``throttled`` (never silently dropped)."""


class SchedulerSettings(_Section):
    misfire_grace_seconds: Seconds = 3600.0
    reconcile_interval_seconds: Seconds = 60.0
    max_workers: Annotated[int, Field(ge=1, le=1000)] = 32
    launch_processes: Annotated[int, Field(ge=0, le=64)] = 2
    """Processes that send RunTask calls (scheduld/launcher.py), so a herd is not bound by
    botocore's CPU on one interpreter; 0 sends them from scheduld's own process."""
    signed_run_task: bool = True
    """Launcher processes send RunTask as one signed request while ECS answers 200, and through
    boto3 otherwise (scheduld/signed_runtask.py); false: always through boto3."""
    shutdown_timeout_seconds: Seconds = 30.0
    lease_ttl_seconds: Annotated[float, Field(ge=0.5)] = 2.0
    run_history_per_job: Annotated[int, Field(ge=1)] = 100
    run_history_days: Annotated[float, Field(gt=0)] = 30.0
    max_backfill_runs: Annotated[int, Field(ge=1, le=100000)] = 1000
    """Most runs one backfill (or one catchUpPolicy all catch-up) may start."""
    backfill_runs_per_second: Annotated[float, Field(ge=0)] = 1.0
    """Pace of backfill and catch-up runs, all jobs together (0: unpaced); they also wait for
    room in ``quotas.tasks_per_minute`` instead of being recorded throttled (scheduld/pacing.py)."""
    retry_maximum_attempts: Annotated[int, Field(ge=0, le=185)] = 0
    """Default retryPolicy.maximumRetryAttempts: 0: a job without its own policy is never retried."""
    retry_maximum_event_age_seconds: Annotated[int, Field(ge=60, le=86400)] = 86400
    retry_backoff_seconds: Seconds = 2.0
    retry_backoff_max_seconds: Seconds = 300.0
    dead_letter_queue: str | None = None
    """Default deadLetterQueue (an SQS queue name or ARN) for runs that exhaust their retries."""
    pending_poll_seconds: Seconds = 1.0
    """How often the leader looks for retries due and requested runs (events wake it sooner)."""
    # health, readiness and /metrics (scheduld/http.py); port 0 picks a free one (tests)
    http_host: str = "127.0.0.1"
    http_port: Annotated[int, Field(ge=0, le=65535)] = 9100


class MetricsSettings(_Section):
    """Prometheus metrics of both processes (README "Operating")."""

    enabled: bool = True
    # a job_id label on per-job series: one series per job, so only for small installations
    per_job: bool = False


class RetrySettings(_Section):
    """The one retry policy (common/retry.py): botocore retry modes for AWS, tenacity for the rest."""

    aws_mode: Literal["standard", "adaptive"] = "adaptive"
    """botocore retry mode of every AWS client; ``adaptive`` adds a client-side rate limiter
    that engages once AWS throttles (so a herd of RunTask calls queues instead of failing)."""
    aws_max_attempts: Annotated[int, Field(ge=1, le=20)] = 3
    """Attempts of one AWS call (first try included) on throttling and transient errors; with
    the ``aws`` timeouts, this bounds how long one call can hold a fire or a write."""
    attempts: Annotated[int, Field(ge=1, le=100)] = 5
    """Attempts of one store call inside a fire (claim, record) when the store is unavailable."""
    first_wait_seconds: Seconds = 0.1
    """First wait before a retry; each next wait doubles (with jitter) up to ``max_wait_seconds``."""
    max_wait_seconds: Seconds = 30.0
    """Longest wait between tries; the ops-queue consumer also caps it at the visibility timeout."""
    startup_seconds: Seconds = 60.0
    """How long a starting process retries reaching SQS before it gives up."""


class NotifyDefaults(_Section):
    """Targets for jobs without their own ``notify``: SNS topic ARNs or SQS queue URLs/ARNs."""

    on_failure: list[NotifyTarget] = Field(default_factory=list)
    on_success: list[NotifyTarget] = Field(default_factory=list)


class TrackingSettings(_Section):
    """How scheduld learns how tasks ended: DescribeTasks polls (leader only) and events."""

    enabled: bool = True
    poll_interval_seconds: Seconds = 30.0
    sweep_interval_seconds: Seconds = 300.0
    """Polling interval when ``ecs.tasks_events_queue`` is set: only what events missed."""
    max_describe_calls_per_poll: Annotated[int, Field(ge=1, le=10000)] = 200
    """At most this many DescribeTasks calls (100 tasks each) per poll; older runs first."""
    events_wait_seconds: Annotated[int, Field(ge=0, le=20)] = 10
    task_definition_cache_size: Annotated[int, Field(ge=1)] = 512
    notify: NotifyDefaults = Field(default_factory=NotifyDefaults)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_nested_delimiter="__",
        case_sensitive=False,
        extra="forbid",
    )

    component_name: Literal["webapi", "scheduld"] | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    # JSON access and audit lines are held up to this long and written together (0: each at
    # once); a process killed with SIGKILL loses at most this much of them.
    log_hold_seconds: Annotated[float, Field(ge=0, le=5)] = 0.1
    run_env: str = "local"
    store: StoreSettings = Field(default_factory=StoreSettings)
    sqs: SQSSettings = Field(default_factory=SQSSettings)
    ecs: ECSSettings = Field(default_factory=ECSSettings)
    webapi: WebAPISettings = Field(default_factory=WebAPISettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    tracking: TrackingSettings = Field(default_factory=TrackingSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    aws: AWSSettings = Field(default_factory=AWSSettings)
    quotas: QuotaSettings = Field(default_factory=QuotaSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_dir = Path(os.environ.get(CONFIG_DIR_ENV, _DEFAULT_CONFIG_DIR))
        run_env = _run_env(init_settings, env_settings)
        overlay = YamlConfigSettingsSource(settings_cls, yaml_file=config_dir / f"config_{run_env}.yaml")
        return (init_settings, env_settings, overlay)


def _run_env(init_settings: PydanticBaseSettingsSource, env_settings: PydanticBaseSettingsSource) -> str:
    """``run_env`` as the settings will hold it (init kwarg, else ``RUN_ENV``, else the default)."""
    for source in (init_settings, env_settings):
        value = source().get("run_env")
        if isinstance(value, str) and value:
            return value
    default: str = Settings.model_fields["run_env"].default
    return default


class ConfigError(Exception):
    """Configuration that cannot be used; the message names each bad setting."""


def load_settings(**overrides: Any) -> Settings:
    """Read settings from files and environment; ConfigError names every bad setting."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
            for error in exc.errors(include_url=False)
        )
        raise ConfigError(f"invalid configuration: {problems}") from exc
