"""Stores: role interfaces in ``base`` and ``create_store(settings)``, which builds the backend."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from common.config import ConfigError
from common.store.base import PAGE_LIMIT, JobChange, JobStore, LeaseStore, RunHistory, RunLog, Store

if TYPE_CHECKING:
    from common.config import Settings

__all__ = [
    "PAGE_LIMIT",
    "JobChange",
    "JobStore",
    "LeaseStore",
    "RunHistory",
    "RunLog",
    "Store",
    "check_backend",
    "create_store",
]

_CLIENTS = {"elasticsearch": "elasticsearch", "opensearch": "opensearchpy"}
"""Client module of each search flavour; the extra that installs it has the flavour's name."""


def check_backend(settings: Settings) -> None:
    """ConfigError, naming the extra to install, if the configured store's client is missing."""
    if settings.store.backend != "elasticsearch":
        return
    flavour = settings.store.elasticsearch.flavour
    try:
        importlib.import_module(_CLIENTS[flavour])
    except ImportError as exc:
        raise ConfigError(
            f"store.elasticsearch.flavour is {flavour}, but its client library is not installed: "
            f"pip install 'ecs-scheduler[{flavour}]'"
        ) from exc


def create_store(settings: Settings) -> Store:
    """The store named by ``settings.store.backend``; ValueError for a backend not known here,
    ConfigError when its client library (an extra) is not installed."""
    backend = settings.store.backend
    check_backend(settings)
    if backend == "sqlite":
        from common.store.sqlite import SQLiteJobStore

        return SQLiteJobStore(settings.store.sqlite)
    if backend == "elasticsearch":
        from common.store.elasticsearch import ElasticsearchJobStore

        return ElasticsearchJobStore.from_settings(settings.store.elasticsearch)
    raise ValueError(f"store.backend: unknown backend {backend!r} (sqlite or elasticsearch)")
