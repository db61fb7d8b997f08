"""The end-to-end bench's verdicts (bench/e2e.py ``_judge``) on arrivals made up here: a job
counts as missed at the first boundary at least 1 s after its 201 and at every herd after the
burst that it did not reach; lags are measured from the boundary."""

from __future__ import annotations

from bench.e2e import PERIOD, WATCH, _judge

T0 = 1_800_000_000.0  # a 10 s boundary


def test_misses_and_lags_are_counted_per_boundary() -> None:
    created = [("a", T0 + 2.0), ("b", T0 + 8.5), ("c", T0 + 9.5)]
    arrivals = [
        (T0 + PERIOD + 0.1, "a", 1),  # a's first boundary: T0+10 (>= 1 s after its 201)
        (T0 + PERIOD + 0.2, "b", 1),  # b's first is T0+10 too (8.5 + 1 <= 10)
        # c's first boundary is T0+20 (9.5 + 1 > 10): an arrival at T0+10 does not count for it
        (T0 + PERIOD + 0.3, "c", 1),
    ]
    herds = range(int(T0) + 2 * PERIOD, int(T0 + 9.5 + WATCH) - PERIOD, PERIOD)
    for boundary in herds:
        arrivals += [(boundary + 0.05, "a", 1), (boundary + 0.4, "b", 1)]  # c never again
    figures = _judge({"creates": 3}, created, arrivals)
    assert figures["burst"]["misses"] == 1  # c, at T0+20
    assert figures["herd"]["herds"] == len(herds)
    assert figures["herd"]["missed"] == len(herds)  # c at every herd
    assert figures["herd"]["fires"] == 2 * len(herds)
    assert figures["herd"]["lag_ms_p50"] == 400.0  # the upper of two equal halves
    assert figures["herd"]["lag_ms_max"] == 400.0
    assert figures["burst"]["first_fire_lag_ms_p99"] == 200.0
