"""One retry policy, set by ``Settings.retry`` (common/config.py ``RetrySettings``).

- AWS calls: botocore's own retries (``aws_config``), in ``adaptive`` mode by default: standard
  retries plus a client-side rate limiter that slows a client once the service throttles it,
  so a herd of RunTask calls queues instead of failing (bench/retry_modes.py measures it).
- Everything else (store calls, waiting for SQS at start-up, a background loop after a
  failure): tenacity, exponential waits from ``first_wait_seconds`` up to ``max_wait_seconds``,
  retrying only the exceptions the caller names as temporary, each retry logged at WARNING.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import tenacity
from botocore.config import Config

from common.config import RetrySettings


def aws_config(settings: RetrySettings, **options: Any) -> Config:
    """A botocore Config with the retry mode and attempts of ``settings`` (plus ``options``)."""
    retries = {"mode": settings.aws_mode, "max_attempts": settings.aws_max_attempts}
    return Config(retries=retries, **options)  # type: ignore[arg-type]


def retrying(
    settings: RetrySettings,
    *,
    temporary: type[BaseException] | tuple[type[BaseException], ...],
    logger: logging.Logger | None,
    attempts: int | None = None,
    give_up_after: float | None = None,
    stop_event: threading.Event | None = None,
    cap: float | None = None,
) -> tenacity.Retrying:
    """A tenacity policy retrying ``temporary`` errors; the last one is re-raised.

    Stops after ``attempts`` (default ``settings.attempts``), or after ``give_up_after``
    seconds when given, or never when only ``stop_event`` bounds it; waits on ``stop_event``
    when given, so shutdown interrupts a wait. ``cap`` lowers the longest wait. Each retry is
    logged on ``logger`` at WARNING (``None``: an expected wait, not logged).
    """
    stop: tenacity.stop.stop_base
    if give_up_after is not None:
        stop = tenacity.stop_after_delay(give_up_after)
    elif stop_event is not None and attempts is None:
        stop = tenacity.stop_never
    else:
        stop = tenacity.stop_after_attempt(attempts or settings.attempts)
    if stop_event is not None:
        stop = stop | tenacity.stop_when_event_set(stop_event)
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(temporary),
        stop=stop,
        wait=backoff(settings, cap=cap),
        sleep=_interruptible(stop_event) if stop_event is not None else tenacity.nap.sleep,
        before_sleep=tenacity.before_sleep_log(logger, logging.WARNING) if logger else None,
        reraise=True,
    )


def backoff(settings: RetrySettings, *, cap: float | None = None) -> tenacity.wait.wait_base:
    """Exponential waits with jitter: ``first_wait_seconds`` doubling up to ``max_wait_seconds``
    (or ``cap``, when lower)."""
    ceiling = settings.max_wait_seconds if cap is None else min(cap, settings.max_wait_seconds)
    return tenacity.wait_exponential_jitter(
        multiplier=settings.first_wait_seconds, max=ceiling, jitter=settings.first_wait_seconds
    )


def _interruptible(stop_event: threading.Event) -> Callable[[float], None]:
    def sleep(seconds: float) -> None:
        stop_event.wait(seconds)

    return sleep
