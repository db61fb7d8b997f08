"""webapi: the JSON REST API to create, read, update, delete and list scheduled jobs."""

from __future__ import annotations

import contextlib
import importlib.util
import signal
from collections.abc import Iterator
from types import FrameType

from common.config import Settings
from webapi.app import create_app

__all__ = ["create_app", "serve"]


def serve(settings: Settings) -> int:
    """Serve the API with uvicorn in ONE process: each process would publish its own events
    and keep its own write-rate counters; scale with more containers instead.
    SIGTERM/SIGINT shut down gracefully and the process exits 0."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            """uvicorn re-raises the signal after shutting down; a clean stop should exit 0."""

            def handle(signum: int, frame: FrameType | None) -> None:
                self.handle_exit(signum, frame)

            previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    config = uvicorn.Config(
        create_app(settings),
        host=settings.webapi.host,
        port=settings.webapi.port,
        # uvloop and httptools (dependencies) make the server itself faster than asyncio and
        # h11 (bench/api.py); the fallbacks keep platforms without them working.
        loop="uvloop" if _installed("uvloop") else "asyncio",
        http="httptools" if _installed("httptools") else "h11",
        workers=1,
        log_config=None,
        access_log=settings.log_level == "DEBUG",
        timeout_graceful_shutdown=10,
    )
    Server(config).run()
    return 0


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None
