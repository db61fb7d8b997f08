"""Prometheus helpers shared by webapi and scheduld; each process defines its own metrics.

Metrics are prometheus_client objects on its default registry, defined at module level as
the library intends (a metric is a process-wide fact, not a collaborator to pass around).
Every name starts with ``ecs_scheduler_``. Labels have bounded values (outcome, reason,
route template, status); a per-job label exists only where ``metrics.per_job`` turns it on.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder

PREFIX = "ecs_scheduler_"

# seconds: AWS calls and HTTP requests (ms to a few s)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# seconds from a fire's scheduled time to its RunTask: healthy is well under 1 s
LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)
# seconds an ECS task runs: from a few seconds to a day
TASK_DURATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 4 * 3600.0, 86400.0)
# seconds a whole reconcile takes: grows with the number of jobs
RECONCILE_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0)


def exposition(accept: str | None, registry: CollectorRegistry = REGISTRY) -> tuple[bytes, str]:
    """The registry rendered for a scrape (text, or OpenMetrics when ``accept`` asks for it)."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


def exported_names(registry: CollectorRegistry = REGISTRY) -> set[str]:
    """Every series name a scrape of ``registry`` can show, with the _bucket/_count/_sum/
    _total/_created suffixes: what an alert or dashboard may refer to."""
    names: set[str] = set()
    for family in registry.collect():
        names.add(family.name)
        suffixes = {
            "counter": ("_total", "_created"),
            "histogram": ("_bucket", "_count", "_sum", "_created"),
            "summary": ("_count", "_sum", "_created"),
            "gauge": ("",),
            "info": ("_info",),
        }.get(family.type, ("",))
        names.update(family.name + suffix for suffix in suffixes)
    return names
