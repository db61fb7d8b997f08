"""SQS event bus: the ops queue between webapi and scheduld, with a dead-letter queue.

Queues are created when missing (``sqs.create_queues``) with a redrive policy, so a message
that keeps failing ends in the dead-letter queue; messages that do not parse are moved there
at once. Retries of throttled or failed calls are botocore's (``retry`` settings, bounded), and
a publish waits at most ``aws.publish_timeout_seconds``. Error messages say what failed, never
the endpoint URL (that goes to the log).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import orjson
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from common import aws
from common.bus.base import EventBus, ReceivedMessage, pack, unpack
from common.bus.batcher import Batcher, Outcome
from common.config import AWSSettings, RetrySettings, SQSSettings
from common.errors import BusUnavailableError, PublishError
from common.models import ChangeEvent

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

logger = logging.getLogger(__name__)


class SQSEventBus(EventBus):
    def __init__(
        self,
        client: SQSClient,
        *,
        queue_url: str,
        dead_letter_queue_url: str,
        wait_seconds: int,
        publish_timeout: float = AWSSettings().publish_timeout_seconds,
        send_client: SQSClient | None = None,
    ) -> None:
        self._client = client
        self._send_client = send_client or client
        self._publish_timeout = publish_timeout
        self.queue_url = queue_url
        self.dead_letter_queue_url = dead_letter_queue_url
        self._wait_seconds = wait_seconds
        self._batcher = Batcher(self._send_batch)

    @classmethod
    def from_settings(
        cls,
        settings: SQSSettings,
        *,
        client: SQSClient | None = None,
        aws_settings: AWSSettings | None = None,
        retry: RetrySettings | None = None,
    ) -> SQSEventBus:
        """Connect (boto3 reads region, endpoint and credentials from the environment) with the
        ``aws`` timeouts and the ``retry`` policy."""
        timeouts = aws_settings or AWSSettings()
        sqs: SQSClient = client or aws.client(
            "sqs",
            timeouts,
            retry=retry,
            # a long poll must outlast its wait
            read_timeout=max(timeouts.read_timeout_seconds, settings.wait_seconds + 5),
        )
        # Publishes read with the publish bound: a send stuck on a stalled SQS gives up about
        # when its caller does, so the senders are free again soon after SQS recovers.
        sender: SQSClient | None = None
        if client is None:
            sender = aws.client("sqs", timeouts, retry=retry, read_timeout=timeouts.publish_timeout_seconds)
        with _unavailable("set up queues"):
            dlq_url = _queue_url(sqs, settings.dead_letter_queue_name, settings.create_queues, {})
            queue_url = settings.queue_url or _queue_url(
                sqs,
                settings.queue_name,
                settings.create_queues,
                {
                    "VisibilityTimeout": str(settings.visibility_timeout_seconds),
                    "RedrivePolicy": orjson.dumps(
                        {
                            "deadLetterTargetArn": _queue_arn(sqs, dlq_url),
                            "maxReceiveCount": str(settings.max_receive_count),
                        }
                    ).decode(),
                },
            )
        return cls(
            sqs,
            queue_url=queue_url,
            dead_letter_queue_url=dlq_url,
            wait_seconds=settings.wait_seconds,
            publish_timeout=timeouts.publish_timeout_seconds,
            send_client=sender,
        )

    def publish(self, event: ChangeEvent) -> str:
        """Concurrent publishes share SendMessageBatch calls; each waits for its own outcome."""
        future = self._batcher.submit(pack([event]))
        try:
            outcome = future.result(timeout=self._publish_timeout)
        except concurrent.futures.TimeoutError as exc:
            raise self._failed(event, self._timed_out()) from exc
        except (BotoCoreError, ClientError) as exc:
            raise self._failed(event, _describe(exc), exc) from exc
        return self._sent(event, outcome)

    async def publish_async(self, event: ChangeEvent) -> str:
        """``publish`` awaited on the event loop: no thread waits for the batch's reply.

        Shielded: a caller cancelled (or timed out) after its store write still gets its
        event sent, if SQS answers at all.
        """
        return await self.publish_events_async([event])

    async def publish_events_async(self, events: Sequence[ChangeEvent]) -> str:
        """One message carrying ``events`` (``pack``); concurrent calls share batch calls."""
        first = events[0]
        future = self._batcher.submit(pack(events))
        try:
            outcome = await asyncio.wait_for(
                asyncio.shield(asyncio.wrap_future(future)), timeout=self._publish_timeout
            )
        except TimeoutError as exc:
            raise self._failed(first, self._timed_out()) from exc
        except (BotoCoreError, ClientError) as exc:
            raise self._failed(first, _describe(exc), exc) from exc
        return self._sent(first, outcome)

    def _timed_out(self) -> str:
        return f"SQS did not answer within {self._publish_timeout:g} s"

    def _sent(self, event: ChangeEvent, outcome: Outcome) -> str:
        if outcome.message_id is None:
            raise self._failed(event, outcome.error or "not sent")
        logger.debug("published %s of job %s as message %s", event.op, event.job_id, outcome.message_id)
        return outcome.message_id

    def _failed(self, event: ChangeEvent, reason: str, exc: Exception | None = None) -> PublishError:
        logger.error(
            "publishing %s of job %s to %s failed: %s",
            event.op,
            event.job_id,
            self.queue_url,
            exc if exc is not None else reason,
        )
        return PublishError(event.job_id, reason)

    def _send_batch(self, bodies: Sequence[str]) -> list[Outcome]:
        entries = [{"Id": str(n), "MessageBody": body} for n, body in enumerate(bodies)]
        response = self._send_client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)  # type: ignore[arg-type]
        outcomes = {
            entry["Id"]: Outcome(message_id=entry["MessageId"]) for entry in response.get("Successful", [])
        }
        for failed in response.get("Failed", []):
            outcomes[failed["Id"]] = Outcome(error=f"{failed.get('Code')}: {failed.get('Message', '')}")
        return [outcomes.get(str(n), Outcome(error="no result for this message")) for n in range(len(bodies))]

    def receive(self, *, max_messages: int = 10, wait_seconds: float | None = None) -> list[ReceivedMessage]:
        wait = self._wait_seconds if wait_seconds is None else int(wait_seconds)
        return self._receive(self.queue_url, max_messages=max_messages, wait=wait)

    def ack(self, message: ReceivedMessage) -> None:
        with _unavailable(f"delete message {message.message_id}"):
            self._client.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message.receipt)

    def ack_batch(self, messages: Sequence[ReceivedMessage]) -> list[str]:
        """DeleteMessageBatch, 10 at a time: one SQS call per received batch."""
        failed: list[str] = []
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            entries = [{"Id": str(n), "ReceiptHandle": m.receipt} for n, m in enumerate(chunk)]
            with _unavailable(f"delete {len(chunk)} messages"):
                response = self._client.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)  # type: ignore[arg-type]
            for entry in response.get("Failed", []):
                message = chunk[int(entry["Id"])]
                logger.warning(
                    "SQS: message %s not deleted (%s): it will be delivered again",
                    message.message_id,
                    entry.get("Code"),
                )
                failed.append(message.message_id)
        return failed

    def dead_letter(self, message: ReceivedMessage, *, reason: str) -> None:
        with _unavailable(f"dead-letter message {message.message_id}"):
            self._client.send_message(
                QueueUrl=self.dead_letter_queue_url,
                MessageBody=message.body or "<empty>",
                MessageAttributes={
                    "reason": {"DataType": "String", "StringValue": reason[:1024] or "unknown"},
                    "originalMessageId": {"DataType": "String", "StringValue": message.message_id},
                },
            )
        self.ack(message)
        logger.warning("moved message %s to the dead-letter queue: %s", message.message_id, reason)

    def dead_letters(self, *, max_messages: int = 10) -> list[ReceivedMessage]:
        return self._receive(self.dead_letter_queue_url, max_messages=max_messages, wait=0, peek=True)

    def verify(self) -> None:
        """GetQueueAttributes on the ops queue: reachable, and the queue exists."""
        with _unavailable("read the ops queue's attributes"):
            self._client.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])

    def close(self) -> None:
        self._batcher.close()
        self._client.close()
        if self._send_client is not self._client:
            self._send_client.close()

    def _receive(
        self, url: str, *, max_messages: int, wait: int, peek: bool = False
    ) -> list[ReceivedMessage]:
        extra: dict[str, Any] = {"VisibilityTimeout": 0} if peek else {}
        with _unavailable("receive messages"):
            response = self._client.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=max(1, min(10, max_messages)),
                WaitTimeSeconds=max(0, min(20, wait)),
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
                MessageAttributeNames=["All"],
                **extra,
            )
        return [_parse(raw) for raw in response.get("Messages", [])]


def _parse(raw: Any) -> ReceivedMessage:
    body = raw.get("Body", "")
    events: tuple[ChangeEvent, ...] = ()
    error: str | None = None
    try:
        events = unpack(body)
    except ValidationError as exc:
        error = f"not a change event: {exc.errors(include_url=False)[0]['msg']}"
    except ValueError as exc:
        error = f"not a change event: {exc}"
    reason = raw.get("MessageAttributes", {}).get("reason", {}).get("StringValue")
    return ReceivedMessage(
        message_id=raw["MessageId"],
        receipt=raw["ReceiptHandle"],
        body=body,
        event=events[0] if events else None,
        events=events,
        error=error or reason,
        receive_count=int(raw.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
    )


def _queue_url(sqs: SQSClient, name: str, create: bool, attributes: dict[str, str]) -> str:
    try:
        return sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as exc:
        if not create or _code(exc) not in {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}:
            raise
    logger.info("creating SQS queue %s", name)
    return sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]  # type: ignore[arg-type]


def _queue_arn(sqs: SQSClient, url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return attributes["Attributes"]["QueueArn"]


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _describe(exc: Exception) -> str:
    """What failed, for error bodies: no endpoint URL or queue URL (those are logged)."""
    return aws.describe_error(exc, "SQS")


@contextlib.contextmanager
def _unavailable(action: str) -> Iterator[None]:
    """botocore's errors become BusUnavailableError, chained."""
    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        logger.warning("SQS: could not %s: %s", action, exc)
        raise BusUnavailableError(f"could not {action}: {_describe(exc)}") from exc
