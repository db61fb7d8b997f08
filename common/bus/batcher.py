"""Coalesces concurrent publishes into SQS SendMessageBatch calls (up to 10 messages each).

Each ``publish`` still waits for its own message's outcome, so a failure reaches the caller
(and from there the API client) exactly as with one call per message. Under load, one boto3
call carries up to ten events: fewer SQS requests and far less client CPU per event, since a
boto3 call's CPU cost hardly depends on its size (bench/api.py measures it).

One batch is filled at a time. While no call is in flight the batch leaves at once (no added
latency when idle); while calls are in flight it waits up to ``linger`` seconds for more
events, since they would otherwise leave one per call, each holding the interpreter lock.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

logger = logging.getLogger(__name__)

MAX_BATCH = 10  # SQS SendMessageBatch limit


@dataclass(frozen=True)
class Outcome:
    """One message's result: its message id, or why it was not sent."""

    message_id: str | None = None
    error: str | None = None


SendBatch = Callable[[Sequence[str]], Sequence[Outcome]]
"""Sends message bodies in one call; returns one Outcome per body, in order."""

_Item = tuple[str, "Future[Outcome]"]


class Batcher:
    def __init__(self, send_batch: SendBatch, *, senders: int = 4, linger: float = 0.002) -> None:
        self._send_batch = send_batch
        self._linger = linger
        self._queue: queue.Queue[_Item | None] = queue.Queue()
        self._filling = threading.Lock()  # one batch is filled at a time
        self._in_flight = 0
        self._count_lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, name=f"sqs-publisher-{n}", daemon=True) for n in range(senders)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, body: str) -> Future[Outcome]:
        future: Future[Outcome] = Future()
        self._queue.put((body, future))
        return future

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._filling:
                batch, stop = self._fill()
                if batch:
                    with self._count_lock:
                        self._in_flight += 1
            if batch:
                try:
                    self._send(batch)
                finally:
                    with self._count_lock:
                        self._in_flight -= 1
            if stop:
                return

    def _fill(self) -> tuple[list[_Item], bool]:
        """The next batch, and whether this sender was told to stop."""
        first = self._queue.get()
        if first is None:
            return [], True
        batch = [first]
        deadline = time.monotonic() + self._linger if self._in_flight else 0.0
        while len(batch) < MAX_BATCH:
            wait = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _send(self, batch: list[_Item]) -> None:
        # A caller that gave up waiting (cancelled) is not sent; the others can no longer cancel.
        batch = [(body, future) for body, future in batch if future.set_running_or_notify_cancel()]
        if not batch:
            return
        try:
            outcomes = self._send_batch([body for body, _ in batch])
        except Exception as exc:  # the whole call failed: every waiting publisher learns why
            logger.debug("batch of %d messages failed", len(batch), exc_info=True)
            for _, future in batch:
                future.set_exception(exc)
            return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            future.set_result(outcome)
