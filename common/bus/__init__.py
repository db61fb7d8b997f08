"""Event buses: ``create_bus(settings)`` builds the configured one."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import tenacity

from common.bus.base import EventBus, ReceivedMessage
from common.errors import BusUnavailableError

if TYPE_CHECKING:
    from common.config import Settings

__all__ = ["EventBus", "ReceivedMessage", "create_bus"]

logger = logging.getLogger(__name__)


def create_bus(settings: Settings, *, give_up_after: float = 60.0) -> EventBus:
    """The SQS bus described by ``settings.sqs`` (queues created when configured to).

    A process may start before SQS answers (a stack coming up together): setting up is
    retried with backoff, each failure logged, for ``give_up_after`` seconds; then the
    BusUnavailableError propagates and the process stops with it in the log.
    """
    from common.bus.sqs import SQSEventBus

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(BusUnavailableError),
        stop=tenacity.stop_after_delay(give_up_after),
        wait=tenacity.wait_exponential(multiplier=0.2, max=5),
        before_sleep=tenacity.before_sleep_log(logger, logging.WARNING),
        reraise=True,
    )
    return retrying(SQSEventBus.from_settings, settings.sqs, aws_settings=settings.aws)
