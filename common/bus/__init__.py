"""Event buses: ``create_bus(settings)`` builds the configured one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from common.bus.base import EventBus, ReceivedMessage

if TYPE_CHECKING:
    from common.config import Settings

__all__ = ["EventBus", "ReceivedMessage", "create_bus"]


def create_bus(settings: Settings) -> EventBus:
    """The SQS bus described by ``settings.sqs`` (queues created when configured to)."""
    from common.bus.sqs import SQSEventBus

    return SQSEventBus.from_settings(settings.sqs)
