"""scheduld: keeps an APScheduler schedule in sync with the job store and launches ECS tasks."""

from __future__ import annotations

import logging
import signal
from types import FrameType

from common import aws
from common.bus import create_bus
from common.config import Settings
from common.store import create_store
from scheduld.daemon import Daemon
from scheduld.executor import LaunchQuota, TaskLauncher, ecs_client
from scheduld.triggers import default_registry

__all__ = ["Daemon", "run"]

logger = logging.getLogger(__name__)


def run(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT, then stop cleanly; returns the exit code."""
    pool = settings.scheduler.max_workers + 4
    ecs = ecs_client(settings, pool=pool)
    sqs = aws.client("sqs", settings.aws, max_pool_connections=pool)
    store = create_store(settings)
    bus = create_bus(settings)
    daemon = Daemon(
        settings,
        store=store,
        bus=bus,
        launcher=TaskLauncher(ecs, settings.ecs, quota=LaunchQuota(settings.quotas.tasks_per_minute)),
        triggers=default_registry(sqs),
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
