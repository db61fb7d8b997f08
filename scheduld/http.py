"""scheduld's own small HTTP server: ``/healthz``, ``/readyz`` and ``/metrics``.

``/healthz``: the process answers (liveness; no dependency is touched).
``/readyz``: 200 when this replica does its part, else 503. A leader is ready once its
schedule is loaded and while its lease is fresh; a standby while it reaches the store (so it
could take over). Both also need the store and the ops queue to answer. The body says
``leader`` or ``standby``, the fencing token, lease age, jobs scheduled, last reconcile.
``/metrics``: prometheus_client's exposition of this process's registry.

Served by the standard library on a few threads: it answers probes and scrapes, no more.
"""

from __future__ import annotations

import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import orjson

from common.health import Checker
from common.metrics import exposition

if TYPE_CHECKING:
    from scheduld.daemon import Daemon

logger = logging.getLogger(__name__)


def readiness(daemon: Daemon, checker: Checker) -> tuple[bool, dict[str, Any]]:
    """Whether this replica is ready, and the body saying why."""
    leadership = daemon.leadership
    lease = leadership.current()
    leading = daemon.leading
    renewed = leadership.renewed_at
    dependencies_ok, checks = checker.run()
    if leading:
        role_ok = daemon.loaded.is_set() and lease is not None
    else:
        role_ok = leadership.store_reachable
    checker.record(role_ok and dependencies_ok)
    last_reconcile = daemon.last_reconcile
    body: dict[str, Any] = {
        "status": "ready" if role_ok and dependencies_ok else "not ready",
        "role": "leader" if leading else "standby",
        "replica": daemon.replica,
        "fencingToken": lease.token if lease is not None else None,
        "leaseAgeSeconds": round(time.monotonic() - renewed, 3) if lease is not None and renewed else None,
        "scheduleLoaded": daemon.loaded.is_set(),
        "jobsScheduled": len(daemon.schedule.scheduled_ids()),
        "lastReconcile": last_reconcile.isoformat() if last_reconcile is not None else None,
        "checks": checks,
    }
    return role_ok and dependencies_ok, body


class HealthServer:
    """Serves the three endpoints on ``host:port`` (port 0: a free one, see ``port``)."""

    def __init__(self, daemon: Daemon, checker: Checker, *, host: str, port: int) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                path = self.path.split("?", 1)[0]
                if path == "/healthz":
                    self._reply(200, *_json({"status": "ok", "replica": daemon.replica}))
                elif path == "/readyz":
                    ready, body = readiness(daemon, server.checker)
                    self._reply(200 if ready else 503, *_json(body))
                elif path == "/metrics":
                    self._reply(200, *exposition(self.headers.get("Accept")))
                else:
                    self._reply(404, *_json({"message": "Not found: try /healthz, /readyz or /metrics"}))

            def _reply(self, status: int, data: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
                pass  # probes every few seconds would drown the log

        class Server(ThreadingHTTPServer):
            daemon_threads = True

        self.checker = checker
        self._server = Server((host, port), Handler)
        self.host = host
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="scheduld-http", daemon=True)

    def start(self) -> None:
        self._thread.start()
        logger.info("health, readiness and metrics on http://%s:%d/", self.host, self.port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.checker.close()


def _json(body: dict[str, Any]) -> tuple[bytes, str]:
    return orjson.dumps(body), "application/json"
