"""The event bus interface: webapi publishes change events, scheduld receives them.

Every backend passes tests/contract/test_bus.py unchanged.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from common.models import ChangeEvent


@dataclass(frozen=True)
class ReceivedMessage:
    """One delivery of one or several change events (``events``); ``event`` is the first, and
    None for a message that does not parse (a poison message)."""

    message_id: str
    receipt: str
    body: str
    event: ChangeEvent | None
    error: str | None = None
    receive_count: int = 1
    events: tuple[ChangeEvent, ...] = ()

    def __post_init__(self) -> None:
        if not self.events and self.event is not None:
            object.__setattr__(self, "events", (self.event,))


MAX_EVENTS_PER_MESSAGE = 100
"""Most change events one message may carry (about 10 KB: far below SQS's 256 KB)."""


def pack(events: Sequence[ChangeEvent]) -> str:
    """The message body for ``events``: one event as itself (the seed's shape), several as
    ``{"events": [...]}``, so each message costs the queue once for many changes."""
    if len(events) == 1:
        return events[0].to_json()
    if not 1 < len(events) <= MAX_EVENTS_PER_MESSAGE:
        raise ValueError(f"a message carries 1 to {MAX_EVENTS_PER_MESSAGE} events, not {len(events)}")
    return orjson.dumps({"events": [event.to_document() for event in events]}).decode()


def unpack(body: str) -> tuple[ChangeEvent, ...]:
    """The events of a message body (either shape); ValueError if it is neither."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if isinstance(document, dict) and isinstance(document.get("events"), list):
        items = document["events"]
        if not 0 < len(items) <= MAX_EVENTS_PER_MESSAGE:
            raise ValueError(f"a message carries 1 to {MAX_EVENTS_PER_MESSAGE} events")
        return tuple(ChangeEvent.model_validate(item) for item in items)
    return (ChangeEvent.model_validate(document),)


class EventBus(ABC):
    """At-least-once delivery: messages may arrive late, twice or out of order.

    Methods raise only domain errors: PublishError from ``publish``, BusUnavailableError
    from the others when the bus cannot be reached.
    """

    @abstractmethod
    def publish(self, event: ChangeEvent) -> str:
        """Send one event; returns the message id. PublishError if it could not be sent."""

    async def publish_events_async(self, events: Sequence[ChangeEvent]) -> str:
        """Send ``events`` in one message (``pack``); outcome and errors as ``publish_async``.
        The default sends them one by one, for a bus without batching."""
        ids = [await self.publish_async(event) for event in events]
        return ids[0]

    async def publish_async(self, event: ChangeEvent) -> str:
        """``publish`` for an event loop: same outcome and errors, without holding the loop.

        The default runs ``publish`` in a worker thread; a bus that sends from threads of its
        own overrides it to await the outcome without occupying a thread per waiting caller.
        """
        return await asyncio.to_thread(self.publish, event)

    @abstractmethod
    def receive(self, *, max_messages: int = 10, wait_seconds: float | None = None) -> list[ReceivedMessage]:
        """Wait up to ``wait_seconds`` (long poll) for messages; [] if none came."""

    @abstractmethod
    def ack(self, message: ReceivedMessage) -> None:
        """The message was handled: delete it so it is not delivered again."""

    def ack_batch(self, messages: Sequence[ReceivedMessage]) -> list[str]:
        """``ack`` for many messages, in as few calls as the bus allows; returns the message
        ids that could not be deleted (they will be delivered again). BusUnavailableError if
        the bus could not be reached at all."""
        for message in messages:
            self.ack(message)
        return []

    @abstractmethod
    def dead_letter(self, message: ReceivedMessage, *, reason: str) -> None:
        """Move a message that cannot be handled to the dead-letter queue (and ack it)."""

    @abstractmethod
    def dead_letters(self, *, max_messages: int = 10) -> list[ReceivedMessage]:
        """Peek into the dead-letter queue (operators and tests)."""

    def verify(self) -> None:  # noqa: B027 - optional hook
        """Readiness: return if the ops queue can be reached, else BusUnavailableError.

        Cheap enough to call on every readiness probe. The default knows no better than "yes".
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
