"""webapi: the JSON REST API to create, read, update, delete and list scheduled jobs."""

from __future__ import annotations

from common.config import Settings
from webapi.app import create_app

__all__ = ["create_app", "serve"]


def serve(settings: Settings) -> int:
    """Serve the API with uvicorn: ONE process, since the app is the source of change events."""
    import uvicorn

    uvicorn.run(
        create_app(settings),
        host=settings.webapi.host,
        port=settings.webapi.port,
        workers=1,
        log_config=None,
        access_log=settings.log_level == "DEBUG",
        timeout_graceful_shutdown=10,
    )
    return 0
