"""Reading metrics as Prometheus does: over HTTP, parsed by prometheus_client's own parser."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of ``url`` (a /metrics endpoint) by (name, labels)."""
    reply = httpx.get(url, timeout=10)
    reply.raise_for_status()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(reply.text)
        for sample in family.samples
    }


def value(url: str, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist (yet)."""
    return scrape(url).get((name, frozenset(labels.items())), 0.0)
