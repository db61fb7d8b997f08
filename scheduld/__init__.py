"""scheduld: keeps an APScheduler schedule in sync with the job store and launches ECS tasks."""

from __future__ import annotations

import logging
import signal
from types import FrameType

from common import aws
from common.bus import create_bus
from common.bus.base import EventBus
from common.config import Settings
from common.health import Checker, bus_check, store_check
from common.logging import bind_process
from common.store import create_store
from common.store.base import JobStore
from scheduld import metrics
from scheduld.daemon import Daemon
from scheduld.executor import LaunchQuota, TaskLauncher, ecs_client
from scheduld.http import HealthServer
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
    bind_process(replica=daemon.replica)
    metrics.configure(per_job=settings.metrics.per_job)
    http = _health_server(settings, daemon, store=store, bus=bus)
    daemon.start()
    daemon.wait()
    daemon.stop()
    if http is not None:
        http.stop()
    bus.close()
    store.close()
    return 0


def _health_server(
    settings: Settings, daemon: Daemon, *, store: JobStore, bus: EventBus
) -> HealthServer | None:
    """Started before the daemon, so probes answer (503) while it loads. A port in use costs
    the health endpoints, not the schedule: logged, and scheduld runs on."""
    checker = Checker("scheduld", {"store": store_check(store), "queue": bus_check(bus)})
    try:
        server = HealthServer(
            daemon, checker, host=settings.scheduler.http_host, port=settings.scheduler.http_port
        )
    except OSError as exc:
        checker.close()
        logger.error(
            "health/metrics server not started on %s:%d: %s",
            settings.scheduler.http_host,
            settings.scheduler.http_port,
            exc,
        )
        return None
    server.start()
    return server
