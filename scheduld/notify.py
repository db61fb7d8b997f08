"""Notifications: one JSON document per finished run, to the job's (or the server's default)
``notify`` targets, SNS topics or SQS queues.

A run goes to ``onFailure`` when it ended failed or timedOut, to ``onSuccess`` when it
succeeded. A run's end is recorded once and notified right after, by the replica that recorded
it: at most once (a replica dying between the two loses that notification). A target that
cannot be reached is logged with the job, run and target and does not stop the others
(botocore retries throttling and transient errors).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Any

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from common.config import NotifyDefaults
from common.models import Job, Run, RunPublic

logger = logging.getLogger(__name__)

DOCUMENT_TYPE = "ecs-scheduler.run-finished"


def run_document(job_id: str, run: Run, *, task_definition: str | None = None) -> dict[str, Any]:
    """What a target receives: the job, the run, its status, and per task exit codes,
    reasons, durations and log links (the run as ``GET /jobs/{id}/runs`` shows it)."""
    run_fields = RunPublic.of(run).to_document()  # no fencing token, no replica
    document: dict[str, Any] = {
        "type": DOCUMENT_TYPE,
        "jobId": job_id,
        "runId": run.run_id,
        "status": run.status,
        "runs": f"/jobs/{job_id}/runs",
        "run": run_fields,
    }
    if task_definition:
        document["taskDefinition"] = task_definition
    return document


class Notifier:
    """Sends run documents to SNS topic ARNs and SQS queues (URL or ARN)."""

    def __init__(self, *, sns: Any, sqs: Any, defaults: NotifyDefaults | None = None) -> None:
        self._sns = sns
        self._sqs = sqs
        self._defaults = defaults or NotifyDefaults()
        self._queue_urls: dict[str, str] = {}
        self._lock = threading.Lock()

    def targets(self, job: Job | None, run: Run) -> list[str]:
        """The job's own targets for this outcome, else the server's default ones."""
        chosen = job.notify if job is not None and job.notify is not None else self._defaults
        targets = chosen.on_failure if run.failed else chosen.on_success
        return list(targets or [])

    def notify(self, job: Job | None, job_id: str, run: Run) -> int:
        """Send ``run``'s document to its targets; returns how many accepted it."""
        targets = self.targets(job, run)
        if not targets:
            return 0
        task_definition = job.task_definition if job is not None else None
        body = orjson.dumps(run_document(job_id, run, task_definition=task_definition)).decode()
        sent = 0
        for target in targets:
            try:
                self._send(target, body, job_id=job_id, run=run)
                sent += 1
            except (BotoCoreError, ClientError) as exc:
                logger.warning(
                    "job %s: run %s notification to %s failed: %s", job_id, run.run_id, target, exc
                )
        logger.info(
            "job %s: run %s %s, notified %d of %d targets", job_id, run.run_id, run.status, sent, len(targets)
        )
        return sent

    def _send(self, target: str, body: str, *, job_id: str, run: Run) -> None:
        attributes = {"status": {"DataType": "String", "StringValue": run.status}}
        fifo: dict[str, str] = {}
        if target.endswith(".fifo"):
            fifo = {"MessageGroupId": job_id, "MessageDeduplicationId": _dedup_id(run)}
        if target.startswith("arn:") and ":sns:" in target:
            self._sns.publish(
                TopicArn=target,
                Message=body,
                Subject=f"ecs-scheduler: {job_id} {run.status}"[:100],
                MessageAttributes=attributes,
                **fifo,
            )
            return
        self._sqs.send_message(
            QueueUrl=self._queue_url(target), MessageBody=body, MessageAttributes=attributes, **fifo
        )

    def _queue_url(self, target: str) -> str:
        if not target.startswith("arn:"):
            return target
        with self._lock:
            cached = self._queue_urls.get(target)
        if cached is not None:
            return cached
        *_, account, name = target.split(":")
        url: str = self._sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        with self._lock:
            self._queue_urls[target] = url
        return url


def _dedup_id(run: Run) -> str:
    return hashlib.sha256(f"{run.run_id}/{run.status}".encode()).hexdigest()[:64]
