"""webapi's request counter and latency histogram: counted in plain lists by the event loop's
thread, turned into prometheus_client metric families when a scrape asks.

prometheus_client's own ``Counter`` and ``Histogram`` take a lock per value and walk the
buckets in Python on every observation: several times what this costs, on every request
(bench/api.py, ``metrics_cost_pct``). Requests are observed by the event loop's thread alone,
so there is nothing to lock. The exposition is still prometheus_client's, from the families a
custom collector yields (its documented way to export values kept elsewhere).

A scrape served from another thread may read a series while it is counted: it then sees that
request in some of the series' numbers and not yet in others, a difference the next scrape
removes (prometheus_client's own histogram is not read atomically either).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from itertools import accumulate

from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

_SeriesKey = tuple[str, str, int]  # route template, method, status


class _Series:
    """One (route, method, status): requests per latency bucket (the last one is +Inf), and
    their total seconds."""

    __slots__ = ("buckets", "seconds", "created")

    def __init__(self, size: int) -> None:
        self.buckets = [0] * size
        self.seconds = 0.0
        self.created = time.time()


class RequestMetrics(Collector):
    """``<requests>_total{route,method,status}`` and ``<latency>{route,method}``, as a
    prometheus_client ``Counter`` and ``Histogram`` with those labels would export them."""

    def __init__(
        self,
        *,
        requests: tuple[str, str],
        latency: tuple[str, str],
        buckets: Sequence[float],
    ) -> None:
        """``requests`` and ``latency`` are (name, documentation); ``buckets`` ascending
        upper bounds in seconds, without +Inf."""
        self._requests = requests
        self._latency = latency
        self._bounds = tuple(buckets)
        self._labels = [floatToGoString(bound) for bound in self._bounds] + ["+Inf"]  # type: ignore[no-untyped-call]
        self._series: dict[_SeriesKey, _Series] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """One request; from the event loop's thread."""
        series = self._series.get((route, method, status))
        if series is None:
            series = self._series[(route, method, status)] = _Series(len(self._labels))
        series.buckets[bisect_left(self._bounds, seconds)] += 1  # the first bound >= seconds
        series.seconds += seconds

    def describe(self) -> Iterator[Metric]:
        """The families, without samples: what the registry checks names against."""
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        requests, latency = self._families()
        # the histogram is per route and method: the statuses' series added together
        counts: dict[tuple[str, str], list[int]] = {}
        seconds: dict[tuple[str, str], float] = {}
        for (route, method, status), series in list(self._series.items()):  # a copy: one C call
            buckets = list(series.buckets)
            requests.add_metric([route, method, str(status)], sum(buckets), created=series.created)
            key = (route, method)
            summed = counts.get(key)
            counts[key] = buckets if summed is None else [a + b for a, b in zip(summed, buckets, strict=True)]
            seconds[key] = seconds.get(key, 0.0) + series.seconds
        for (route, method), route_counts in counts.items():
            cumulative = list(zip(self._labels, accumulate(route_counts), strict=True))
            latency.add_metric([route, method], cumulative, seconds[(route, method)])
        yield requests
        yield latency

    def _families(self) -> tuple[CounterMetricFamily, HistogramMetricFamily]:
        return (
            CounterMetricFamily(*self._requests, labels=("route", "method", "status")),
            HistogramMetricFamily(*self._latency, labels=("route", "method")),
        )
