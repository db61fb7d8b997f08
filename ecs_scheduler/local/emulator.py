"""The local AWS emulator: a moto server on 127.0.0.1 seeded for the usage guide.

Seeds the ops queue and its dead-letter queue, an ECS cluster with EC2 container instances,
the task definitions ``sleeper-task`` (container ``sleeper-container``) and ``consumer-task``,
and the queue ``consumer-task-queue`` (the compose stack's ``bootstrap`` service seeds its
emulator with the same code). Emulated tasks then end like the short-lived containers
they stand for: each is stopped ``SLEEP_SECONDS`` (from its environment override, default 3)
after it was first seen, since moto's tasks would otherwise run forever.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType
from typing import TYPE_CHECKING, Any

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from common import aws
from common.bus.sqs import SQSEventBus
from common.config import Settings
from common.errors import SchedulerError
from common.retry import retrying
from ecs_scheduler.local import task_events

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient

logger = logging.getLogger(__name__)

DEFAULT_SLEEP_SECONDS = 3.0
MOTO_ACCOUNT = "123456789012"
NOTIFICATIONS_QUEUE = "ecs-scheduler-notifications"
CONTAINER_INSTANCES = 2
TASK_DEFINITIONS = {
    "sleeper-task": "sleeper-container",
    "consumer-task": "consumer-container",
}
TRIGGER_QUEUES = ("consumer-task-queue",)


def seed(settings: Settings, *, endpoint_url: str | None = None) -> None:
    """Create everything the usage guide's curl commands expect to exist, each only if
    missing: the compose stack seeds its emulator again whenever it restarts. Without
    ``endpoint_url``, boto3 takes the endpoint from the environment."""
    client_args: dict[str, Any] = {"endpoint_url": endpoint_url} if endpoint_url else {}
    sqs = aws.client("sqs", **client_args)
    queues = settings.sqs.model_copy(update={"create_queues": True})
    SQSEventBus.from_settings(queues, client=sqs).close()  # get-or-create, as the app does
    for name in (*TRIGGER_QUEUES, NOTIFICATIONS_QUEUE):
        sqs.create_queue(QueueName=name)
    ecs: ECSClient = aws.client("ecs", **client_args)
    cluster = settings.ecs.cluster
    active = [c for c in ecs.describe_clusters(clusters=[cluster])["clusters"] if c["status"] == "ACTIVE"]
    if not active:
        ecs.create_cluster(clusterName=cluster)
    for family, container in TASK_DEFINITIONS.items():
        if ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"]:
            continue
        ecs.register_task_definition(
            family=family,
            networkMode="bridge",  # moto would demand a networkConfiguration for awsvpc
            containerDefinitions=[
                {
                    "name": container,
                    "image": "public.ecr.aws/docker/library/busybox:latest",
                    "cpu": 16,
                    "memory": 64,
                    "command": ["sh", "-c", "sleep ${SLEEP_SECONDS:-3}; echo done; exit ${EXIT_CODE:-0}"],
                    "logConfiguration": {  # so the run history shows CloudWatch Logs links
                        "logDriver": "awslogs",
                        "options": {
                            "awslogs-group": f"/ecs/{family}",
                            "awslogs-region": ecs.meta.region_name,
                            "awslogs-stream-prefix": "ecs",
                        },
                    },
                }
            ],
        )
    cluster_arn = ecs.describe_clusters(clusters=[cluster])["clusters"][0]["clusterArn"]
    task_events.seed_rule(events=aws.client("events", **client_args), sqs=sqs, cluster_arn=cluster_arn)
    registered = int(active[0].get("registeredContainerInstancesCount", 0)) if active else 0
    ec2 = aws.client("ec2", **client_args)
    for _ in range(CONTAINER_INSTANCES - registered):
        instance = ec2.run_instances(
            ImageId="ami-12c6146b", MinCount=1, MaxCount=1, InstanceType="m5.4xlarge"
        )["Instances"][0]
        document = {
            "instanceId": instance["InstanceId"],
            "instanceType": "m5.4xlarge",
            "region": ecs.meta.region_name,
            "availabilityZone": instance["Placement"]["AvailabilityZone"],
            "accountId": "123456789012",
            "privateIp": instance.get("PrivateIpAddress", "10.0.0.1"),
            "imageId": "ami-12c6146b",
        }
        ecs.register_container_instance(
            cluster=cluster, instanceIdentityDocument=orjson.dumps(document).decode()
        )
    logger.info(
        "seeded cluster %s, task definitions %s, queues %s + %s",
        cluster,
        ", ".join(TASK_DEFINITIONS),
        settings.sqs.queue_name,
        ", ".join(TRIGGER_QUEUES),
    )


def seed_when_up(settings: Settings, *, timeout: float = 60.0) -> int:
    """``seed`` against the environment's emulator, retried while it is still starting."""
    policy = retrying(
        settings.retry,
        temporary=(BotoCoreError, ClientError, SchedulerError),
        logger=logger,
        give_up_after=timeout,
    )
    try:
        policy(seed, settings)
    except (BotoCoreError, ClientError, SchedulerError) as exc:
        logger.critical("seeding the AWS emulator failed: %s", exc)
        return 1
    return 0


class MotoOutcomes:
    """Writes how an emulated task ran and ended into the moto backend of this process, so
    DescribeTasks (and the tracker) see what ECS would report: moto's StopTask alone sets
    only lastStatus/desiredStatus STOPPED and stoppedReason; containers keep exitCode 0 and
    tasks carry no stopCode, startedAt or stoppedAt. Only usable where moto runs in-process
    (``make run``'s emulator); the compose stack's separate reaper cannot reach moto's models.
    """

    def __init__(self, *, region: str, account: str = MOTO_ACCOUNT) -> None:
        from moto.ecs.models import ecs_backends
        from moto.moto_api import state_manager

        self._backend = ecs_backends[account][region]
        # moto moves lastStatus on towards STOPPED on every DescribeTasks while the task is
        # still wanted RUNNING; an emulated task stays RUNNING until the reaper stops it.
        state_manager.set_transition(
            model_name="ecs::task", transition={"progression": "manual", "times": 10**9}
        )

    def started(self, cluster: str, arn: str, at: datetime) -> None:
        task = self._task(cluster, arn)
        if task is not None:
            task.created_at = task.pull_started_at = at
            task.started_at = task.pull_stopped_at = at
            for container in task.containers:
                container.last_status = "RUNNING"
                container.exitCode = None  # moto starts containers at 0; ECS has none yet

    def stopped(
        self,
        cluster: str,
        arn: str,
        *,
        at: datetime,
        stop_code: str,
        exit_code: int | None,
        reason: str | None,
    ) -> None:
        task = self._task(cluster, arn)
        if task is None:
            return
        task.stop_code = stop_code
        task.stopping_at = task.execution_stopped_at = task.stopped_at = at
        for container in task.containers:
            container.last_status = "STOPPED"
            container.exitCode = exit_code
            container.reason = reason

    def _task(self, cluster: str, arn: str) -> Any:
        return self._backend.tasks.get(cluster, {}).get(arn)


@dataclass
class TaskReaper:
    """Stops each emulated task once its container would have finished sleeping, with the
    exit code of its ``EXIT_CODE`` override (default 0); a task with a ``FAIL_TO_START``
    override (its value is the reason) stops at once, as ECS stops a task that cannot start."""

    ecs: ECSClient
    cluster: str
    first_seen: dict[str, float] = field(default_factory=dict)
    outcomes: MotoOutcomes | None = None
    events: Any = None
    """An EventBridge client: each stop is also put as an "ECS Task State Change" event."""

    def sweep(self, now: float | None = None) -> list[str]:
        """One pass: returns the ARNs of the tasks stopped."""
        now = time.monotonic() if now is None else now
        arns = [
            arn
            for page in self.ecs.get_paginator("list_tasks").paginate(
                cluster=self.cluster, desiredStatus="RUNNING"
            )
            for arn in page["taskArns"]
        ]
        stopped: list[str] = []
        for start in range(0, len(arns), 100):
            for task in self.ecs.describe_tasks(cluster=self.cluster, tasks=arns[start : start + 100])[
                "tasks"
            ]:
                arn = task["taskArn"]
                failure = _override(task, "FAIL_TO_START")
                if arn not in self.first_seen and failure is None and self.outcomes is not None:
                    self.outcomes.started(self.cluster, arn, datetime.now(UTC))
                seen = self.first_seen.setdefault(arn, now)
                if failure is not None:
                    self._stop(arn, "TaskFailedToStart", None, failure)
                elif now - seen >= _sleep_seconds(task):
                    self._stop(arn, "EssentialContainerExited", _exit_code(task), None)
                else:
                    continue
                self.first_seen.pop(arn, None)
                stopped.append(arn)
        return stopped

    def _stop(self, arn: str, stop_code: str, exit_code: int | None, failure: str | None) -> None:
        reason = failure or "Essential container in task exited"
        self.ecs.stop_task(cluster=self.cluster, task=arn, reason=reason)
        if self.outcomes is not None:
            self.outcomes.stopped(
                self.cluster,
                arn,
                at=datetime.now(UTC),
                stop_code=stop_code,
                exit_code=exit_code,
                reason=failure,
            )
        if self.events is not None:
            (task,) = self.ecs.describe_tasks(cluster=self.cluster, tasks=[arn])["tasks"]
            task_events.publish(self.events, dict(task))


def _override(task: Any, name: str) -> str | None:
    for override in task.get("overrides", {}).get("containerOverrides", []):
        for variable in override.get("environment", []):
            if variable.get("name") == name:
                return str(variable.get("value", ""))
    return None


def _sleep_seconds(task: Any) -> float:
    try:
        return float(_override(task, "SLEEP_SECONDS") or DEFAULT_SLEEP_SECONDS)
    except ValueError:
        return DEFAULT_SLEEP_SECONDS


def _exit_code(task: Any) -> int:
    try:
        return int(_override(task, "EXIT_CODE") or 0)
    except ValueError:
        return 1  # what a shell makes of a container asked to exit with a non-number


def serve(settings: Settings, *, port: int, interval: float = 0.5) -> int:
    """Run the emulator, and its task reaper, until SIGINT/SIGTERM."""
    from moto.server import ThreadedMotoServer

    from ecs_scheduler.local import idempotency

    idempotency.install()  # RunTask clientToken as ECS honours it
    stop = _stop_on_signals()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint_url = f"http://127.0.0.1:{port}"
    try:
        seed(settings, endpoint_url=endpoint_url)
        logger.info("AWS emulator ready on %s", endpoint_url)
        ecs = aws.client("ecs", endpoint_url=endpoint_url)
        outcomes = MotoOutcomes(region=ecs.meta.region_name)
        events = aws.client("events", endpoint_url=endpoint_url)
        reap_until(stop, TaskReaper(ecs, settings.ecs.cluster, outcomes=outcomes, events=events), interval)
    finally:
        server.stop()
        logger.info("AWS emulator stopped")
    return 0


def reap(settings: Settings, *, interval: float = 0.5) -> int:
    """Only the task reaper, against the ECS endpoint of the environment (the compose stack's
    emulator), until SIGINT/SIGTERM."""
    stop = _stop_on_signals()
    logger.info("reaping emulated tasks of cluster %s", settings.ecs.cluster)
    reap_until(stop, TaskReaper(aws.client("ecs"), settings.ecs.cluster), interval)
    return 0


def reap_until(stop: threading.Event, reaper: TaskReaper, interval: float) -> None:
    """Sweep every ``interval`` seconds until ``stop``; a failed sweep is logged and retried."""
    while not stop.wait(interval):
        try:
            for arn in reaper.sweep():
                logger.info("emulated task finished: %s", arn)
        except (BotoCoreError, ClientError) as exc:
            logger.warning("task reaper sweep failed: %s", exc)


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    return stop
