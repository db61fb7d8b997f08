"""Job stores: ``create_store(settings)`` builds the configured backend."""

from __future__ import annotations

from typing import TYPE_CHECKING

from common.store.base import PAGE_LIMIT, JobChange, JobStore

if TYPE_CHECKING:
    from common.config import Settings

__all__ = ["PAGE_LIMIT", "JobChange", "JobStore", "create_store"]


def create_store(settings: Settings) -> JobStore:
    """The store named by ``settings.store.backend``."""
    backend = settings.store.backend
    if backend == "sqlite":
        from common.store.sqlite import SQLiteJobStore

        return SQLiteJobStore(settings.store.sqlite)
    from common.store.elasticsearch import ElasticsearchJobStore

    return ElasticsearchJobStore.from_settings(settings.store.elasticsearch)
