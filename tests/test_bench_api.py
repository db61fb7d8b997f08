"""The instrumentation figures of `bench api` (bench/api.py ``instrumentation_costs``) on rounds
made up here: the cost is the capacity lost, from each setup's median server CPU per request,
so one disturbed round moves neither the cost nor the target's verdict."""

from __future__ import annotations

from typing import Any

from bench.api import instrumentation_costs


def _round(cpu_us: float, rps: float, p99_ms: float = 5.0, errors: int = 0) -> dict[str, Any]:
    return {"server_cpu_ms": cpu_us / 1000, "rps": rps, "p99_ms": p99_ms, "errors": errors}


def test_cost_is_the_capacity_lost_from_median_cpu_per_request() -> None:
    figures = instrumentation_costs(
        {
            # "off": a round the machine disturbed (400 µs) is the max, not the median
            "off": [_round(100, 5000), _round(400, 1000), _round(100, 4800), _round(102, 5100)],
            # 125 µs against 100: it serves 1/125 where "off" serves 1/100, 20 % fewer
            "metrics": [_round(125, 4000), _round(124, 3900), _round(126, 4100), _round(125, 4000, errors=2)],
        }
    )
    assert figures["off"]["cpu_us"] == 101.0  # median of 100, 100, 102, 400
    assert (figures["off"]["cpu_us_min"], figures["off"]["cpu_us_max"]) == (100.0, 400.0)
    assert figures["metrics"]["cpu_us"] == 125.0
    assert figures["metrics_cost_pct"] == round(100 * (1 - 101 / 125), 1) == 19.2
    # round by round: 20.0, -222.6, 20.6, 18.4; their median
    assert figures["metrics_cost_paired_pct"] == 19.2
    assert figures["off"]["rps"] == 4900.0  # served req/s: medians too, informative only
    assert figures["metrics_rps_lost_pct"] == round(100 * (4900 - 4000) / 4900, 1)
    assert figures["metrics"]["errors"] == 2
    assert figures["metrics"]["rounds"] == 4
    assert "off_cost_pct" not in figures


def test_no_cost_when_setups_cost_the_same() -> None:
    same = [_round(300, 2000), _round(310, 1900), _round(290, 2100)]
    figures = instrumentation_costs({"off": same, "metrics_access_log": list(reversed(same))})
    assert figures["metrics_access_log_cost_pct"] == 0.0
