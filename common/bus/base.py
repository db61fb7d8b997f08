"""The event bus interface: webapi publishes change events, scheduld receives them.

Every backend passes tests/contract/test_bus.py unchanged.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from dataclasses import dataclass

from common.models import ChangeEvent


@dataclass(frozen=True)
class ReceivedMessage:
    """One delivery. ``event`` is None for a message that does not parse (a poison message)."""

    message_id: str
    receipt: str
    body: str
    event: ChangeEvent | None
    error: str | None = None
    receive_count: int = 1


class EventBus(ABC):
    """At-least-once delivery: messages may arrive late, twice or out of order.

    Methods raise only domain errors: PublishError from ``publish``, BusUnavailableError
    from the others when the bus cannot be reached.
    """

    @abstractmethod
    def publish(self, event: ChangeEvent) -> str:
        """Send one event; returns the message id. PublishError if it could not be sent."""

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
