"""scheduld: keeps an APScheduler schedule in sync with the job store and launches ECS tasks."""

from __future__ import annotations

import logging
import signal
from types import FrameType
from typing import Any

from common import aws
from common.bus import create_bus
from common.config import Settings
from common.store import create_store
from common.store.base import Store
from scheduld.daemon import Daemon
from scheduld.executor import LaunchQuota, TaskLauncher, ecs_client
from scheduld.notify import Notifier
from scheduld.tracking import TaskEvents, Tracker
from scheduld.triggers import default_registry

__all__ = ["Daemon", "run"]

logger = logging.getLogger(__name__)


def run(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT, then stop cleanly; returns the exit code."""
    pool = settings.scheduler.max_workers + 4
    ecs = ecs_client(settings, pool=pool)
    sqs = aws.client("sqs", settings.aws, retry=settings.retry, max_pool_connections=pool)
    store = create_store(settings)
    bus = create_bus(settings)
    tracker, events = _tracking(settings, store=store, ecs=ecs, sqs=sqs)
    daemon = Daemon(
        settings,
        store=store,
        bus=bus,
        launcher=TaskLauncher(ecs, settings.ecs, quota=LaunchQuota(settings.quotas.tasks_per_minute)),
        triggers=default_registry(sqs),
        tracker=tracker,
        task_events=events,
    )

    def _stop(signum: int, frame: FrameType | None) -> None:
        logger.info("received %s", signal.Signals(signum).name)
        daemon.request_stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    daemon.start()
    daemon.wait()
    daemon.stop()
    bus.close()
    store.close()
    return 0


def _tracking(
    settings: Settings, *, store: Store, ecs: Any, sqs: Any
) -> tuple[Tracker | None, TaskEvents | None]:
    """The task outcome tracker (and its events queue, when configured), unless disabled."""
    if not settings.tracking.enabled:
        return None, None
    notifier = Notifier(sns=aws.client("sns", settings.aws), sqs=sqs, defaults=settings.tracking.notify)
    tracker = Tracker(
        store=store, ecs=ecs, ecs_settings=settings.ecs, settings=settings.tracking, notifier=notifier
    )
    queue = settings.ecs.tasks_events_queue
    if not queue:
        return tracker, None
    wait = settings.tracking.events_wait_seconds
    # a long poll must outlast its wait
    receiver = aws.client("sqs", settings.aws, read_timeout=max(settings.aws.read_timeout_seconds, wait + 5))
    return tracker, TaskEvents(receiver, queue, wait_seconds=wait)
