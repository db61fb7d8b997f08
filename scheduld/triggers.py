"""How many tasks a firing wants: the job's own count, or a trigger's (registry by ``type``).

A trigger plug-in is a class with ``expected_count(job, trigger)``; register it under its
``type`` in ``TriggerRegistry``. SQS is built in: queue depth scaled by ``messagesPerTask``.
"""

from __future__ import annotations

import logging
import math
import threading
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from common.errors import SchedulerError
from common.models import MAX_TASKS_PER_FIRE, Job, SQSTrigger
from scheduld import metrics

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

logger = logging.getLogger(__name__)


class TriggerError(SchedulerError):
    def __init__(self, job_id: str, detail: str) -> None:
        super().__init__(f"Trigger of job {job_id} could not be checked: {detail}")
        self.job_id = job_id


class TriggerEvaluator(Protocol):
    def expected_count(self, job: Job, trigger: Any) -> int:
        """Tasks this firing should have running (before the maxCount/50 caps)."""


class SQSDepthTrigger:
    """Start tasks only while the queue has messages: max(taskCount, ceil(depth/perTask))."""

    def __init__(self, sqs: SQSClient) -> None:
        self._sqs = sqs
        self._urls: dict[str, str] = {}
        self._lock = threading.Lock()

    def expected_count(self, job: Job, trigger: SQSTrigger) -> int:
        depth = self.depth(job.id, trigger.queue_name)
        if depth == 0:
            return 0
        if trigger.messages_per_task is None:
            return job.task_count
        return max(job.task_count, math.ceil(depth / trigger.messages_per_task))

    def depth(self, job_id: str, queue_name: str) -> int:
        try:
            url = self._url(queue_name)
            attributes = self._sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
        except (BotoCoreError, ClientError) as exc:
            with self._lock:
                self._urls.pop(queue_name, None)
            metrics.TRIGGER_DEPTH_READS.labels(result="error").inc()
            raise TriggerError(job_id, f"queue {queue_name}: {exc}") from exc
        metrics.TRIGGER_DEPTH_READS.labels(result="ok").inc()
        return int(attributes.get("ApproximateNumberOfMessages", "0"))

    def _url(self, queue_name: str) -> str:
        with self._lock:
            if queue_name in self._urls:
                return self._urls[queue_name]
        url = self._sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
        with self._lock:
            self._urls[queue_name] = url
        return url


class TriggerRegistry:
    """Maps a trigger ``type`` to its evaluator and applies the caps every firing obeys."""

    def __init__(self, evaluators: dict[str, TriggerEvaluator]) -> None:
        self._evaluators = dict(evaluators)

    def expected_count(self, job: Job) -> int:
        if job.trigger is None:
            return job.expected_task_count
        evaluator = self._evaluators.get(job.trigger.type)
        if evaluator is None:
            raise TriggerError(job.id, f"no trigger of type {job.trigger.type!r} is installed")
        wanted = evaluator.expected_count(job, job.trigger)
        if job.max_count is not None:
            wanted = min(wanted, job.max_count)
        return max(0, min(wanted, MAX_TASKS_PER_FIRE))


def default_registry(sqs: SQSClient) -> TriggerRegistry:
    return TriggerRegistry({"sqs": SQSDepthTrigger(sqs)})
