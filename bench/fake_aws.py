"""A fast fake AWS endpoint for benchmarks: records when each RunTask arrives, and for which
job (from the ``ecs-scheduler:job-id`` tag). ListTasks/DescribeTasks answer "nothing running",
so every fire launches. asyncio, keep-alive, minimal HTTP/1.1: cheap enough not to be the
bottleneck. Listens on 127.0.0.1 only.

``FakeAWS`` runs in a thread of the caller; ``FakeAWSProcess`` runs it as a process of its own
(``python -m bench.fake_aws``), so the arrival times it records do not wait for the caller's
interpreter lock. The process answers ``GET /_bench/take`` (arrivals and call counts so far,
then forgets them) besides the AWS calls.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
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
                if head.startswith(b"GET /_bench/take "):
                    data = json.dumps(self._take_all()).encode()
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        + f"Content-Length: {len(data)}\r\n\r\n".encode()
                        + data
                    )
                    await writer.drain()
                    continue
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

    def _take_all(self) -> dict[str, Any]:
        arrivals = [[a.at, a.job_id, a.count] for a in self.take()]
        calls, self.calls = dict(self.calls), Counter()
        return {"arrivals": arrivals, "calls": calls}

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


class FakeAWSProcess:
    """``FakeAWS`` (``kind="ecs"``) or ``bench.fast_sqs.FastSQS`` (``kind="sqs"``) in a process
    of its own, so its CPU is not the bench's; ``take`` returns (and forgets) what arrived."""

    def __init__(self, kind: str = "ecs") -> None:
        self._process: subprocess.Popen[str] | None = None
        self._kind = kind
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self._process is not None, "not started"
        return self._process.pid

    def start(self) -> FakeAWSProcess:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.fake_aws", self._kind],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,  # where ``bench`` is importable
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()  # "port N" once listening
        if not line.startswith("port "):
            self.stop()
            raise RuntimeError(f"fake AWS process did not start: {line!r}")
        self.port = int(line.split()[1])
        return self

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def take(self) -> tuple[list[Arrival], Counter[str]]:
        """Arrivals and requests per action since the last ``take``."""
        with urllib.request.urlopen(f"{self.url}/_bench/take", timeout=30) as answer:
            taken = json.loads(answer.read())
        arrivals = [Arrival(at, job_id, count) for at, job_id, count in taken["arrivals"]]
        return arrivals, Counter(taken["calls"])


def _serve_forever(kind: str) -> None:
    """The process side of ``FakeAWSProcess``: serve until SIGTERM (the serving thread is a
    daemon: it ends with the process, open connections and all)."""
    from bench.fast_sqs import FastSQS  # it builds on this module

    fake = (FastSQS() if kind == "sqs" else FakeAWS()).start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    sys.stdout.write(f"port {fake.port}\n")
    sys.stdout.flush()
    stopped.wait()


if __name__ == "__main__":
    _serve_forever(sys.argv[1] if len(sys.argv) > 1 else "ecs")
