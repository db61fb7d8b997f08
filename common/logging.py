"""Logging set up once per process, from LOG_LEVEL (settings.log_level)."""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str, *, component: str | None = None) -> None:
    """One stderr handler on the root logger; noisy libraries held at WARNING."""
    prefix = f"[{component}] " if component else ""
    logging.basicConfig(level=level, format=prefix + FORMAT, stream=sys.stderr, force=True)
    for noisy in (
        "botocore",
        "boto3",
        "urllib3",
        "elastic_transport",
        "opensearch",
        "apscheduler",
        "werkzeug",
    ):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
