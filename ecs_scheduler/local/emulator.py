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
from types import FrameType
from typing import TYPE_CHECKING, Any

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from common import aws
from common.bus.sqs import SQSEventBus
from common.config import Settings
from common.errors import SchedulerError

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient

logger = logging.getLogger(__name__)

DEFAULT_SLEEP_SECONDS = 3.0
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
    for name in TRIGGER_QUEUES:
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
                    "command": ["sh", "-c", "sleep ${SLEEP_SECONDS:-3}; echo done"],
                }
            ],
        )
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
    deadline = time.monotonic() + timeout
    while True:
        try:
            seed(settings)
            return 0
        except (BotoCoreError, ClientError, SchedulerError) as exc:
            if time.monotonic() > deadline:
                logger.critical("seeding the AWS emulator failed: %s", exc)
                return 1
            logger.info("AWS emulator not ready (%s); retrying", exc)
            time.sleep(1.0)


@dataclass
class TaskReaper:
    """Stops each emulated task once its container would have finished sleeping."""

    ecs: ECSClient
    cluster: str
    first_seen: dict[str, float] = field(default_factory=dict)

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
                seen = self.first_seen.setdefault(arn, now)
                if now - seen >= _sleep_seconds(task):
                    self.ecs.stop_task(cluster=self.cluster, task=arn, reason="Essential container exited")
                    self.first_seen.pop(arn, None)
                    stopped.append(arn)
        return stopped


def _sleep_seconds(task: Any) -> float:
    for override in task.get("overrides", {}).get("containerOverrides", []):
        for variable in override.get("environment", []):
            if variable.get("name") == "SLEEP_SECONDS":
                try:
                    return float(variable["value"])
                except ValueError:
                    break
    return DEFAULT_SLEEP_SECONDS


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
        reap_until(
            stop, TaskReaper(aws.client("ecs", endpoint_url=endpoint_url), settings.ecs.cluster), interval
        )
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
