"""Readiness checks of the dependencies both processes share: the job store and the ops queue.

Each check runs on a worker thread with a deadline, so a dependency that hangs makes the
check fail ("timeout") instead of the health endpoint hanging. A reply names the dependency,
its status and latency, never the error's detail: that may hold a file path or an endpoint
URL, and goes to the log instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from prometheus_client import Gauge

from common.bus.base import EventBus
from common.errors import SchedulerError
from common.metrics import PREFIX
from common.store.base import Store

logger = logging.getLogger(__name__)

Check = Callable[[], object]
DEFAULT_TIMEOUT = 2.0

# Set by each readiness evaluation (orchestrator probes, the images' HEALTHCHECK): series
# appear with the first probe, so a process nobody probes raises no readiness alert.
READY = Gauge(PREFIX + "ready", "1 if the last readiness probe passed, else 0", ["component"])
DEPENDENCY_UP = Gauge(
    PREFIX + "dependency_up",
    "1 if the dependency answered the last readiness probe in time, else 0",
    ["component", "dependency"],
)


def store_check(store: Store) -> Check:
    """The store's ``verify``: reachable, and (SQLite) still the file it opened."""
    return store.verify


def bus_check(bus: EventBus) -> Check:
    return bus.verify


class Checker:
    """Runs named checks concurrently, each bounded by ``timeout`` seconds."""

    def __init__(
        self, component: str, checks: Mapping[str, Check], *, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.component = component
        self._checks = dict(checks)
        self._timeout = timeout
        workers = max(1, 2 * len(self._checks))  # a hung check must not starve the next probe
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="health")

    def run(self) -> tuple[bool, dict[str, dict[str, Any]]]:
        """(all ok, {name: {"status": "ok"|"failing"|"timeout", "latencyMs": ...}})."""
        started = time.monotonic()
        futures = {name: self._pool.submit(_timed, name, check) for name, check in self._checks.items()}
        results: dict[str, dict[str, Any]] = {}
        for name, future in futures.items():
            remaining = max(0.0, self._timeout - (time.monotonic() - started))
            try:
                results[name] = future.result(timeout=remaining)
            except FutureTimeout:
                logger.warning("readiness: %s did not answer within %.1f s", name, self._timeout)
                results[name] = {"status": "timeout", "latencyMs": round(self._timeout * 1000, 1)}
        for name, result in results.items():
            DEPENDENCY_UP.labels(component=self.component, dependency=name).set(result["status"] == "ok")
        return all(r["status"] == "ok" for r in results.values()), results

    def record(self, ready: bool) -> None:
        """The probe's overall answer, as the ``ecs_scheduler_ready`` gauge."""
        READY.labels(component=self.component).set(1 if ready else 0)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _timed(name: str, check: Check) -> dict[str, Any]:
    started = time.monotonic()
    status = "ok"
    try:
        check()
    except SchedulerError as exc:
        status = "failing"
        logger.warning("readiness: %s failing: %s", name, exc.message)
    except Exception:
        status = "failing"
        logger.warning("readiness: %s check crashed", name, exc_info=True)
    return {"status": status, "latencyMs": round((time.monotonic() - started) * 1000, 1)}
