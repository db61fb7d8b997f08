"""A fast fake AWS endpoint for benchmarks: records when each RunTask arrives, and for which
job (from the ``ecs-scheduler:job-id`` tag). ListTasks/DescribeTasks answer "nothing running",
so every fire launches. asyncio, keep-alive, minimal HTTP/1.1: cheap enough not to be the
bottleneck. Listens on 127.0.0.1 only."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config


def client(service: str, endpoint_url: str, config: Config | None = None) -> Any:
    """A boto3 client for a local endpoint (fake credentials, us-east-1)."""
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=config,
    )


@dataclass
class Arrival:
    at: float  # time.time() when the request was read
    job_id: str
    count: int


@dataclass
class FakeAWS:
    port: int = 0
    arrivals: list[Arrival] = field(default_factory=list)
    messages: int = 0
    batches: int = 0
    calls: Counter[str] = field(default_factory=Counter)  # requests per action
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _ready: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeAWS:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake AWS did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def take(self) -> list[Arrival]:
        taken, self.arrivals = self.arrivals, []
        return taken

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        server = loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", self.port))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                arrived = time.time()
                headers = {}
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                target = headers.get("x-amz-target", "").rsplit(".", 1)[-1]
                payload = await self._respond(target, json.loads(body or b"{}"), arrived)
                data = json.dumps(payload).encode()
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\n"
                    + f"Content-Length: {len(data)}\r\n\r\n".encode()
                    + data
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _respond(self, target: str, request: dict[str, Any], arrived: float) -> dict[str, Any]:
        """The reply to one call; a subclass that must wait (a long poll) overrides this."""
        return self._answer(target, request, arrived)

    def _answer(self, target: str, request: dict[str, Any], arrived: float) -> dict[str, Any]:
        self.calls[target] += 1
        if target == "RunTask":
            job_id = next(
                (tag["value"] for tag in request.get("tags", []) if tag.get("key") == "ecs-scheduler:job-id"),
                "?",
            )
            count = int(request.get("count", 1))
            self.arrivals.append(Arrival(arrived, job_id, count))
            return {
                "tasks": [
                    {"taskArn": f"arn:aws:ecs:us-east-1:1:task/bench/{job_id}-{i}"} for i in range(count)
                ],
                "failures": [],
            }
        if target == "ListTasks":
            return {"taskArns": []}
        if target == "DescribeTasks":
            return {"tasks": [], "failures": []}
        if target in ("GetQueueUrl", "CreateQueue"):
            return {"QueueUrl": f"{self.url}/123456789012/{request.get('QueueName', 'q')}"}
        if target == "GetQueueAttributes":
            name = str(request.get("QueueUrl", "")).rsplit("/", 1)[-1]
            return {"Attributes": {"QueueArn": f"arn:aws:sqs:us-east-1:123456789012:{name}"}}
        if target == "SendMessage":
            self.messages += 1
            body = str(request.get("MessageBody", "")).encode()
            return {"MessageId": f"m{self.messages}", "MD5OfMessageBody": hashlib.md5(body).hexdigest()}  # noqa: S324
        if target == "SendMessageBatch":
            self.batches += 1
            successful = []
            for entry in request.get("Entries", []):
                self.messages += 1
                body = str(entry.get("MessageBody", "")).encode()
                successful.append(
                    {
                        "Id": entry["Id"],
                        "MessageId": f"m{self.messages}",
                        "MD5OfMessageBody": hashlib.md5(body).hexdigest(),  # noqa: S324
                    }
                )
            return {"Successful": successful, "Failed": []}
        if target == "ReceiveMessage":
            return {"Messages": []}
        return {}
