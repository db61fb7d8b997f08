"""Task state change events for the emulator: moto's ECS emits none, so the task reaper puts
an "ECS Task State Change" event on moto's EventBridge for each task it stops, and seeding
creates the rule (the README's pattern) that forwards those events to the queue scheduld
reads with ``ecs.tasks_events_queue``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import orjson

logger = logging.getLogger(__name__)

EVENTS_QUEUE = "ecs-scheduler-task-events"
RULE = "ecs-scheduler-task-stopped"
DETAIL_TYPE = "ECS Task State Change"


def pattern(cluster_arn: str) -> dict[str, Any]:
    """The rule's event pattern: stopped tasks of one cluster (as the README shows it)."""
    return {
        "source": ["aws.ecs"],
        "detail-type": [DETAIL_TYPE],
        "detail": {"clusterArn": [cluster_arn], "lastStatus": ["STOPPED"]},
    }


def seed_rule(*, events: Any, sqs: Any, cluster_arn: str) -> None:
    """The events queue and the rule that fills it; both calls are upserts (idempotent)."""
    url = sqs.create_queue(QueueName=EVENTS_QUEUE)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=RULE, EventPattern=orjson.dumps(pattern(cluster_arn)).decode())
    events.put_targets(Rule=RULE, Targets=[{"Id": "scheduld", "Arn": queue_arn}])


def publish(events: Any, task: dict[str, Any]) -> None:
    """Put ``task`` (a DescribeTasks task) on the default bus as ECS would, with its times in
    ISO-8601 as EventBridge writes them."""
    detail = orjson.dumps(task, default=_iso).decode()
    events.put_events(
        Entries=[
            {"Source": "aws.ecs", "DetailType": DETAIL_TYPE, "Detail": detail, "Resources": [task["taskArn"]]}
        ]
    )
    logger.debug("task state change event put for %s", task["taskArn"])


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")
