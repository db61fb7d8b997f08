"""One-shot seeding of the AWS emulator for docker-compose.yml (the ``bootstrap`` service).

Creates what webapi, scheduld and the usage guide expect to exist: the ops queue with its
dead-letter queue and redrive policy, the ECS cluster with two EC2 container instances (moto
places EC2 tasks only on registered instances), the task definitions ``sleeper-task``
(container ``sleeper-container``) and ``consumer-task`` (container ``consumer-container``),
and the trigger queue ``consumer-task-queue``. Then it exits.

Standalone on purpose (boto3 and the standard library only) so compose does not depend on
project internals. Names come from the same variables the app reads (``ECS__CLUSTER``,
``SQS__QUEUE_NAME``, ...), so the compose file sets them once for all three services. Endpoint,
region and credentials are the standard AWS SDK variables (``AWS_ENDPOINT_URL``, ...).

Idempotent: re-running it against an emulator that is already seeded changes nothing, since
``docker compose up`` runs it again whenever the stack restarts.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

logger = logging.getLogger("bootstrap_aws")

CONTAINER_INSTANCES = 2
INSTANCE_TYPE = "m5.4xlarge"
IMAGE_ID = "ami-12c6146b"  # an AMI moto knows
ACCOUNT_ID = "123456789012"  # moto's default account
TASK_DEFINITIONS = {
    "sleeper-task": "sleeper-container",
    "consumer-task": "consumer-container",
}
TRIGGER_QUEUES = ("consumer-task-queue",)
MISSING_QUEUE_CODES = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}


def setting(name: str, default: str) -> str:
    """An app setting from the environment (same names and defaults as config_default.yaml)."""
    return os.environ.get(name) or default


def client(service: str) -> Any:
    """boto3 reads AWS_ENDPOINT_URL and credentials itself; AWS_REGION is honoured as the app does."""
    region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-east-1"
    return boto3.client(service, region_name=region)


def wait_for_emulator(sqs: Any, *, timeout: float) -> None:
    """Compose waits for the healthcheck already; this covers a slow first start too."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            sqs.list_queues()
            return
        except (BotoCoreError, ClientError) as exc:
            if time.monotonic() > deadline:
                raise TimeoutError(f"AWS emulator did not answer within {timeout:.0f} s: {exc}") from exc
            time.sleep(1)


def ensure_queue(sqs: Any, name: str, attributes: dict[str, str]) -> str:
    """Get-or-create, like the app's SQS bus, so existing queues keep their attributes."""
    try:
        return str(sqs.get_queue_url(QueueName=name)["QueueUrl"])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in MISSING_QUEUE_CODES:
            raise
    url = str(sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])
    logger.info("created queue %s", name)
    return url


def seed_queues(sqs: Any) -> None:
    """Same attributes as common/bus/sqs.py would create, so either side may go first."""
    dlq_url = ensure_queue(sqs, setting("SQS__DEAD_LETTER_QUEUE_NAME", "ecs-scheduler-ops-dlq"), {})
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": setting("SQS__MAX_RECEIVE_COUNT", "5")}
    ensure_queue(
        sqs,
        setting("SQS__QUEUE_NAME", "ecs-scheduler-ops"),
        {
            "VisibilityTimeout": setting("SQS__VISIBILITY_TIMEOUT_SECONDS", "60"),
            "RedrivePolicy": json.dumps(redrive, separators=(",", ":")),
        },
    )
    for name in TRIGGER_QUEUES:
        ensure_queue(sqs, name, {})


def seed_cluster(ecs: Any, ec2: Any, cluster: str) -> None:
    """Cluster, container instances and task definitions, each only when missing."""
    found = [c for c in ecs.describe_clusters(clusters=[cluster])["clusters"] if c["status"] == "ACTIVE"]
    if not found:
        ecs.create_cluster(clusterName=cluster)
        logger.info("created ECS cluster %s", cluster)
        registered = 0
    else:
        registered = int(found[0].get("registeredContainerInstancesCount", 0))
    for _ in range(CONTAINER_INSTANCES - registered):
        instance = ec2.run_instances(ImageId=IMAGE_ID, MinCount=1, MaxCount=1, InstanceType=INSTANCE_TYPE)[
            "Instances"
        ][0]
        document = {
            "instanceId": instance["InstanceId"],
            "instanceType": INSTANCE_TYPE,
            "region": ecs.meta.region_name,
            "availabilityZone": instance["Placement"]["AvailabilityZone"],
            "accountId": ACCOUNT_ID,
            "privateIp": instance.get("PrivateIpAddress", "10.0.0.1"),
            "imageId": IMAGE_ID,
        }
        ecs.register_container_instance(cluster=cluster, instanceIdentityDocument=json.dumps(document))
        logger.info("registered container instance %s in %s", instance["InstanceId"], cluster)
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
        logger.info("registered task definition %s (container %s)", family, container)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "<AWS default>")
    cluster = setting("ECS__CLUSTER", "default")
    try:
        sqs = client("sqs")
        wait_for_emulator(sqs, timeout=60.0)
        seed_queues(sqs)
        seed_cluster(client("ecs"), client("ec2"), cluster)
    except (BotoCoreError, ClientError, TimeoutError):
        logger.critical("seeding the AWS emulator at %s failed", endpoint, exc_info=True)
        return 1
    logger.info("AWS emulator at %s is seeded (cluster %s)", endpoint, cluster)
    return 0


if __name__ == "__main__":
    sys.exit(main())
