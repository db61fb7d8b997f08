"""The dead-letter message of a run that could not launch (deadLetterQueue), to an SQS queue.

One JSON message per exhausted run: job id, run id, scheduled time, the attempts, the last
error and the RunTask request, so the failure can be inspected or replayed. SQS errors (after
botocore's own retries) are retried a few times with tenacity and then logged, never raised:
the run is already recorded failed in the store.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

import orjson
import tenacity
from botocore.exceptions import BotoCoreError, ClientError

from common.models import Job, Run

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

logger = logging.getLogger(__name__)


class DeadLetters:
    def __init__(self, sqs: SQSClient, *, attempts: int = 3) -> None:
        self._sqs = sqs
        self._urls: dict[str, str] = {}
        self._lock = threading.Lock()
        self._retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type((BotoCoreError, ClientError)),
            stop=tenacity.stop_after_attempt(attempts),
            wait=tenacity.wait_exponential(multiplier=0.2, max=2),
            before_sleep=tenacity.before_sleep_log(logger, logging.WARNING),
            reraise=True,
        )

    def send(self, target: str, *, job: Job, run: Run, request: dict[str, Any]) -> bool:
        """Send the run's dead-letter message to ``target`` (queue name or ARN)."""
        last = run.failures[-1] if run.failures else None
        body = {
            "jobId": job.id,
            "runId": run.run_id,
            "scheduledFor": run.scheduled_for.isoformat(),
            "trigger": run.trigger or "schedule",
            "attempts": [attempt.to_document() for attempt in run.attempts or []],
            "lastError": run.error or (last.detail or last.reason if last else None),
            "runTaskRequest": request,
        }
        try:
            self._retrying(self._send, target, orjson.dumps(body).decode())
        except (BotoCoreError, ClientError) as exc:
            logger.error(
                "job %s: run %s not sent to dead-letter queue %s: %s", job.id, run.run_id, target, exc
            )
            return False
        logger.info("job %s: run %s sent to dead-letter queue %s", job.id, run.run_id, target)
        return True

    def _send(self, target: str, body: str) -> None:
        self._sqs.send_message(QueueUrl=self._url(target), MessageBody=body)

    def _url(self, target: str) -> str:
        with self._lock:
            if target in self._urls:
                return self._urls[target]
        if target.startswith("arn:"):
            _, _, _, _, account, name = target.split(":", 5)
            url = self._sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        else:
            url = self._sqs.get_queue_url(QueueName=target)["QueueUrl"]
        with self._lock:
            self._urls[target] = url
        return url
