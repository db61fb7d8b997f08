"""Event buses: ``create_bus(settings)`` builds the configured one."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from common.bus.base import EventBus, ReceivedMessage
from common.errors import BusUnavailableError
from common.retry import retrying

if TYPE_CHECKING:
    from common.config import Settings

__all__ = ["EventBus", "ReceivedMessage", "create_bus"]

logger = logging.getLogger(__name__)


def create_bus(settings: Settings) -> EventBus:
    """The SQS bus described by ``settings.sqs`` (queues created when configured to).

    A process may start before SQS answers (a stack coming up together): setting up is
    retried with backoff, each failure logged, for ``retry.startup_seconds``; then the
    BusUnavailableError propagates and the process stops with it in the log.
    """
    from common.bus.sqs import SQSEventBus

    policy = retrying(
        settings.retry,
        temporary=BusUnavailableError,
        logger=logger,
        give_up_after=settings.retry.startup_seconds,
    )
    return policy(SQSEventBus.from_settings, settings.sqs, aws_settings=settings.aws, retry=settings.retry)
