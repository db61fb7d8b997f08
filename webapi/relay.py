"""The outbox relay: sends the change events the store recorded with each write to the ops queue.

A write is acknowledged once it is durable with its event (common/store/base.py ``Outbox``), so
SQS being slow or down delays scheduld's view of a change, never the client. Every webapi
replica runs one relay; they share the outbox safely through claims. Events written by this
process are sent at once (the routes ``wake`` the relay), and while writes keep coming, in
rounds ``linger_seconds`` apart that carry many events each (bench/README.md, "Writes");
others (another replica's, a crashed relay's, an unsent one's after its claim expired) within
``poll_seconds``.

Sending is at least once: an event whose send succeeded but whose removal failed is sent again
when its claim expires, and scheduld treats each event as "re-read this job", so twice is
harmless. Up to ``events_per_message`` events travel in one message, and the bus's batching
publisher puts up to 10 messages in one SendMessageBatch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import Protocol

from prometheus_client import Gauge, Histogram

from common.bus.base import EventBus
from common.config import RelaySettings
from common.errors import PublishError, SchedulerError
from common.metrics import LATENCY_BUCKETS, PREFIX
from common.store.base import JobStore, Outbox, OutboxEntry
from webapi.observability import PUBLISH_FAILURES
from webapi.storecalls import read, write

logger = logging.getLogger(__name__)

BACKLOG = Gauge(PREFIX + "api_outbox_events", "Change events recorded but not yet sent to the ops queue")
OLDEST = Gauge(
    PREFIX + "api_outbox_oldest_seconds",
    "Age of the oldest change event not yet sent (0 when none waits): the relay's lag",
)
DELAY = Histogram(
    PREFIX + "api_outbox_delay_seconds",
    "Time from a write to its change event's arrival in the ops queue",
    buckets=LATENCY_BUCKETS,
)
FINAL_DRAIN_SECONDS = 3.0
"""At shutdown the relay sends what is waiting for at most this long; the rest stays in the
outbox for another replica or the next start."""


class OutboxStore(Outbox, JobStore, Protocol):
    """The outbox, and the store's ``try_write`` so claims need no thread hand-off either."""


class OutboxRelay:
    def __init__(self, outbox: OutboxStore, bus: EventBus, settings: RelaySettings) -> None:
        self._outbox = outbox
        self._bus = bus
        self._settings = settings
        self._wake = asyncio.Event()
        self._failures = 0
        self._next_sample = 0.0

    def wake(self) -> None:
        """A write of this process recorded an event: send it now (call on the event loop)."""
        self._wake.set()

    async def run(self) -> None:
        """Send events until cancelled; never raises for a store or SQS outage (logged, and
        retried with backoff)."""
        while True:
            self._wake.clear()  # a write during the round sets it again: no wake-up is lost
            try:
                claimed, failed = await self.send_waiting()
            except SchedulerError as exc:
                logger.warning("outbox relay: the store failed (%s); retrying", exc)
                claimed, failed = 0, 1
            await self._sample_backlog()
            if failed:
                self._failures += 1
                await asyncio.sleep(self._backoff())
            elif claimed:
                self._failures = 0
                if claimed < self._settings.batch_size:
                    # writes are coming: let the next events gather, so SQS (and scheduld)
                    # get fewer, fuller messages; a full round means a backlog: go on at once
                    await asyncio.sleep(self._settings.linger_seconds)
            else:
                self._failures = 0
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._settings.poll_seconds)

    async def drain(self, *, timeout: float = FINAL_DRAIN_SECONDS) -> None:
        """Send what waits, for at most ``timeout`` seconds (shutdown)."""
        deadline = time.monotonic() + timeout
        with contextlib.suppress(TimeoutError, SchedulerError):
            while time.monotonic() < deadline:
                claimed, failed = await asyncio.wait_for(
                    self.send_waiting(), timeout=max(0.01, deadline - time.monotonic())
                )
                if not claimed or failed:
                    return

    async def send_waiting(self) -> tuple[int, int]:
        """One round: claim up to ``batch_size`` events, send them, remove those sent.
        Returns (claimed, failed); an unsent event comes back when its claim expires."""
        outbox = self._outbox
        entries = await write(
            outbox,
            outbox.claim_events,
            limit=self._settings.batch_size,
            claim_seconds=self._settings.claim_seconds,
        )
        if not entries:
            return 0, 0
        size = self._settings.events_per_message
        messages = [entries[start : start + size] for start in range(0, len(entries), size)]
        outcomes = await asyncio.gather(
            *(self._bus.publish_events_async([entry.event for entry in message]) for message in messages),
            return_exceptions=True,
        )
        sent: list[OutboxEntry] = []
        failed: list[tuple[OutboxEntry, BaseException]] = []
        for message, outcome in zip(messages, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                failed.extend((entry, outcome) for entry in message)
            else:
                sent.extend(message)
        if sent:
            await write(outbox, outbox.remove_events, [entry.id for entry in sent])
            now = datetime.now(UTC)
            for entry in sent:
                DELAY.observe(max(0.0, (now - entry.recorded_at).total_seconds()))
        if failed:
            self._log_failures(failed)
        return len(entries), len(failed)

    def _log_failures(self, failed: list[tuple[OutboxEntry, BaseException]]) -> None:
        PUBLISH_FAILURES.inc(len(failed))
        entry, error = failed[0]
        unexpected = not isinstance(error, PublishError)
        logger.log(
            logging.ERROR if unexpected else logging.WARNING,
            "outbox relay: %d change events not sent (first: %s of job %s: %s); retried within %g s",
            len(failed),
            entry.event.op,
            entry.event.job_id,
            error,
            self._settings.claim_seconds,
            exc_info=error if unexpected else None,
        )

    def _backoff(self) -> float:
        return float(min(self._settings.max_backoff_seconds, 0.1 * 2 ** min(self._failures, 10)))

    async def _sample_backlog(self) -> None:
        """The backlog gauges, refreshed at most once per ``poll_seconds``."""
        now = time.monotonic()
        if now < self._next_sample:
            return
        self._next_sample = now + self._settings.poll_seconds
        try:
            count, oldest = await read(self._outbox, self._outbox.outbox_backlog)
        except SchedulerError as exc:
            logger.debug("outbox relay: backlog not sampled: %s", exc)
            return
        BACKLOG.set(count)
        OLDEST.set((datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0)
