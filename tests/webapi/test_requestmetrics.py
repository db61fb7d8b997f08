"""webapi/requestmetrics.py exports what prometheus_client's own Counter and Histogram export
for the same requests (their ``_created`` times aside), on a registry of its own here; the
served /metrics is scraped in tests/webapi/test_observability.py."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from common.metrics import LATENCY_BUCKETS
from webapi.requestmetrics import RequestMetrics

REQUESTS = ("t_requests", "requests")
LATENCY = ("t_latency_seconds", "latency")
# bounds themselves (a bucket is <= its bound), between them, past the last, and zero
OBSERVED = [
    ("/jobs/{job_id}", "GET", 200, 0.001),
    ("/jobs/{job_id}", "GET", 200, 0.0012),
    ("/jobs/{job_id}", "GET", 404, 0.0025),
    ("/jobs/{job_id}", "GET", 404, 0.0),
    ("/jobs/{job_id}", "PUT", 200, 0.3),
    ("/jobs", "POST", 201, 12.5),
    ("/jobs", "POST", 503, 10.0),
    ("unmatched", "GET", 404, 0.00001),
]


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def test_the_families_are_those_of_a_prometheus_client_counter_and_histogram() -> None:
    reference = CollectorRegistry()
    counter = Counter(*REQUESTS, ["route", "method", "status"], registry=reference)
    histogram = Histogram(*LATENCY, ["route", "method"], buckets=LATENCY_BUCKETS, registry=reference)
    ours = CollectorRegistry()
    metrics = RequestMetrics(requests=REQUESTS, latency=LATENCY, buckets=LATENCY_BUCKETS)
    ours.register(metrics)
    for route, method, status, seconds in OBSERVED:
        counter.labels(route=route, method=method, status=str(status)).inc()
        histogram.labels(route=route, method=method).observe(seconds)
        metrics.observe(route, method, status, seconds)

    expected = _samples(reference)
    assert _samples(ours) == expected
    assert (
        expected[("t_requests_total", (("method", "GET"), ("route", "/jobs/{job_id}"), ("status", "404")))]
        == 2
    )
    get_buckets = {
        dict(labels)["le"]: value
        for (name, labels), value in expected.items()
        if name == "t_latency_seconds_bucket"
        and ("method", "GET") in labels
        and ("route", "/jobs/{job_id}") in labels
    }
    assert (get_buckets["0.001"], get_buckets["0.0025"], get_buckets["+Inf"]) == (2, 4, 4)


def test_its_names_are_checked_when_registered() -> None:
    registry = CollectorRegistry()
    Counter(*REQUESTS, registry=registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        registry.register(RequestMetrics(requests=REQUESTS, latency=LATENCY, buckets=LATENCY_BUCKETS))


def test_a_new_series_is_exported_with_its_creation_time() -> None:
    registry = CollectorRegistry()
    metrics = RequestMetrics(requests=REQUESTS, latency=LATENCY, buckets=LATENCY_BUCKETS)
    registry.register(metrics)
    assert (
        registry.get_sample_value("t_requests_total", {"route": "/x", "method": "GET", "status": "200"})
        is None
    )
    metrics.observe("/x", "GET", 200, 0.01)
    labels = {"route": "/x", "method": "GET", "status": "200"}
    assert registry.get_sample_value("t_requests_total", labels) == 1
    assert (registry.get_sample_value("t_requests_created", labels) or 0) > 0
