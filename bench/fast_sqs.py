"""A fast in-memory SQS for benchmarks: the subset of the SQS JSON protocol webapi and scheduld
use (queues, send and batch send, long-poll receive with visibility timeouts, delete), answered
in constant time, so the end-to-end bench can tell our own cost from moto's. Not a test double
for correctness: tests use moto. Listens on 127.0.0.1 only."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from bench.fake_aws import FakeAWS

ACCOUNT = "123456789012"


@dataclass
class _Message:
    id: str
    body: str
    receives: int = 0
    visible_at: float = 0.0
    receipt: str = ""


@dataclass
class _Queue:
    visibility: float = 30.0
    ready: deque[_Message] = field(default_factory=deque)
    in_flight: dict[str, _Message] = field(default_factory=dict)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def requeue_expired(self, now: float) -> None:
        for receipt, message in list(self.in_flight.items()):
            if message.visible_at <= now:
                del self.in_flight[receipt]
                self.ready.append(message)


@dataclass
class FastSQS(FakeAWS):
    queues: dict[str, _Queue] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    async def _respond(self, target: str, request: dict[str, Any], arrived: float) -> dict[str, Any]:
        self.calls[target] += 1
        name = str(request.get("QueueUrl", "")).rsplit("/", 1)[-1]
        if target in ("CreateQueue", "GetQueueUrl"):
            name = str(request.get("QueueName", "q"))
            queue = self.queues.setdefault(name, _Queue())
            timeout = request.get("Attributes", {}).get("VisibilityTimeout")
            if timeout is not None:
                queue.visibility = float(timeout)
            return {"QueueUrl": f"{self.url}/{ACCOUNT}/{name}"}
        queue = self.queues.setdefault(name, _Queue())
        if target == "GetQueueAttributes":
            return {
                "Attributes": {
                    "QueueArn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:{name}",
                    "ApproximateNumberOfMessages": str(len(queue.ready)),
                }
            }
        if target == "SendMessage":
            return self._send(queue, str(request.get("MessageBody", "")))
        if target == "SendMessageBatch":
            successful = [
                {"Id": entry["Id"], **self._send(queue, str(entry.get("MessageBody", "")))}
                for entry in request.get("Entries", [])
            ]
            return {"Successful": successful, "Failed": []}
        if target == "ReceiveMessage":
            return {"Messages": await self._receive(queue, request)}
        if target == "DeleteMessage":
            queue.in_flight.pop(str(request.get("ReceiptHandle")), None)
            return {}
        if target == "DeleteMessageBatch":
            for entry in request.get("Entries", []):
                queue.in_flight.pop(str(entry.get("ReceiptHandle")), None)
            return {"Successful": [{"Id": entry["Id"]} for entry in request.get("Entries", [])], "Failed": []}
        return {}

    def _send(self, queue: _Queue, body: str) -> dict[str, str]:
        message = _Message(id=f"m{next(self._ids)}", body=body)
        queue.ready.append(message)
        queue.arrived.set()
        self.messages += 1
        return {"MessageId": message.id, "MD5OfMessageBody": _md5(body)}

    async def _receive(self, queue: _Queue, request: dict[str, Any]) -> list[dict[str, Any]]:
        deadline = time.monotonic() + float(request.get("WaitTimeSeconds", 0))
        wanted = int(request.get("MaxNumberOfMessages", 1))
        visibility = float(request.get("VisibilityTimeout", queue.visibility))
        while True:
            now = time.monotonic()
            queue.requeue_expired(now)
            if queue.ready or now >= deadline:
                break
            queue.arrived.clear()
            try:
                await asyncio.wait_for(queue.arrived.wait(), timeout=min(1.0, deadline - now))
            except TimeoutError:
                pass
        taken: list[dict[str, Any]] = []
        while queue.ready and len(taken) < wanted:
            message = queue.ready.popleft()
            message.receives += 1
            message.receipt = f"r{next(self._ids)}"
            message.visible_at = time.monotonic() + visibility
            queue.in_flight[message.receipt] = message
            taken.append(
                {
                    "MessageId": message.id,
                    "ReceiptHandle": message.receipt,
                    "Body": message.body,
                    "MD5OfBody": _md5(message.body),
                    "Attributes": {"ApproximateReceiveCount": str(message.receives)},
                }
            )
        return taken


def _md5(body: str) -> str:
    return hashlib.md5(body.encode()).hexdigest()  # noqa: S324 - SQS's own checksum
