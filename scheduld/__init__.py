"""scheduld: keeps an APScheduler schedule in sync with the job store and launches ECS tasks."""

from __future__ import annotations

import logging
import signal
from types import FrameType
from typing import Any

from common import aws
from common.bus import create_bus
from common.bus.base import EventBus
from common.config import Settings
from common.health import Checker, bus_check, store_check
from common.logging import bind_process
from common.store import create_store
from common.store.base import Store
from scheduld import metrics
from scheduld.daemon import Daemon
from scheduld.deadletter import DeadLetters
from scheduld.executor import LaunchQuota, TaskLauncher, ecs_client
from scheduld.http import HealthServer
from scheduld.launcher import LaunchPool
from scheduld.notify import Notifier
from scheduld.pacing import Pacer
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
    quota = LaunchQuota(settings.quotas.tasks_per_minute)
    launch_pool = LaunchPool(settings).start() if settings.scheduler.launch_processes else None
    launcher = TaskLauncher(
        ecs,
        settings.ecs,
        quota=quota,
        run_task=launch_pool.run_task if launch_pool is not None else None,
        run_tasks=launch_pool.run_tasks if launch_pool is not None else None,
        threads=settings.scheduler.max_workers,
    )
    daemon = Daemon(
        settings,
        store=store,
        bus=bus,
        launcher=launcher,
        triggers=default_registry(sqs),
        dead_letters=DeadLetters(sqs),
        tracker=tracker,
        task_events=events,
        pacer=Pacer(settings.scheduler.backfill_runs_per_second, room_for=quota.has_room),
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
    launcher.close()
    if launch_pool is not None:
        launch_pool.close()
    if http is not None:
        http.stop()
    bus.close()
    store.close()
    return 0


def _health_server(settings: Settings, daemon: Daemon, *, store: Store, bus: EventBus) -> HealthServer | None:
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
