"""The instrumentation figures of `bench api` (bench/api.py ``instrumentation_costs``) on rounds
made up here: each round pairs the instrumented server with the "off" one loaded in the same
moments; the cost is the median over the rounds of the capacity lost, so one disturbed round
moves neither the cost nor the target's verdict."""

from __future__ import annotations

from typing import Any

from bench.api import instrumentation_costs


def _round(cpu_us: float, rps: float, p99_ms: float = 5.0, errors: int = 0) -> dict[str, Any]:
    return {"server_cpu_ms": cpu_us / 1000, "rps": rps, "p99_ms": p99_ms, "errors": errors}


def test_cost_is_the_median_of_the_capacity_lost_round_by_round() -> None:
    off = [_round(100, 5000), _round(200, 2500), _round(80, 6000), _round(100, 4800)]
    # the machine got slower in round 2 for both; round 4 disturbed "metrics" alone
    metrics = [_round(125, 4000), _round(250, 2000), _round(100, 4800), _round(400, 1000, errors=2)]
    figures = instrumentation_costs({"metrics": (off, metrics)})
    # round by round: 20.0, 20.0, 20.0, 75.0; their median
    assert figures["metrics_cost_pct"] == 20.0
    assert figures["metrics"]["cpu_us"] == 187.5  # median of 100, 125, 250, 400
    assert figures["metrics"]["off_cpu_us"] == 100.0
    assert figures["metrics"]["cpu_us_rounds"] == [125, 250, 100, 400]
    # served req/s lost round by round: 20.0, 20.0, 20.0, 79.2
    assert figures["metrics_rps_lost_pct"] == 20.0
    assert figures["metrics"]["errors"] == 2
    assert figures["metrics"]["rounds"] == 4
    assert "off_cost_pct" not in figures


def test_no_cost_when_setups_cost_the_same() -> None:
    same = [_round(300, 2000), _round(310, 1900), _round(290, 2100)]
    figures = instrumentation_costs({"metrics_access_log": (same, list(same))})
    assert figures["metrics_access_log_cost_pct"] == 0.0


def test_each_setup_is_paired_with_its_own_rounds_of_off() -> None:
    figures = instrumentation_costs(
        {
            "metrics": ([_round(100, 1)] * 3, [_round(100, 1)] * 3),
            "metrics_access_log": ([_round(200, 1)] * 3, [_round(250, 1)] * 3),
        }
    )
    assert figures["metrics_cost_pct"] == 0.0
    assert figures["metrics_access_log_cost_pct"] == 20.0
