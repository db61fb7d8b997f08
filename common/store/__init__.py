"""Stores: role interfaces in ``base`` and ``create_store(settings)``, which builds the backend."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
    "create_store",
]


def create_store(settings: Settings) -> Store:
    """The store named by ``settings.store.backend``; ValueError for a backend not known here."""
    backend = settings.store.backend
    if backend == "sqlite":
        from common.store.sqlite import SQLiteJobStore

        return SQLiteJobStore(settings.store.sqlite)
    if backend == "elasticsearch":
        from common.store.elasticsearch import ElasticsearchJobStore

        return ElasticsearchJobStore.from_settings(settings.store.elasticsearch)
    raise ValueError(f"store.backend: unknown backend {backend!r} (sqlite or elasticsearch)")
