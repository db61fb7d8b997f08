"""bench/request_cpu.py keeps working: every scenario answers with its expected status through
the real app (the script checks each reply). No timing is asserted (figures belong to
`make bench`)."""

from __future__ import annotations

import logging

from bench.request_cpu import measure


def test_request_cpu_measures_every_scenario() -> None:
    figures = measure(count=20, repeats=1)
    for name in ("bare", "get", "get_token", "list", "put", "post", "delete"):
        assert figures[f"{name}_us"] > 0, name
    assert figures["get_vs_bare"] > 0
    for kind in ("get", "post"):  # served again with metrics off and with access lines
        for variant in ("nometrics", "json", "text"):
            assert figures[f"{kind}_{variant}_us"] > 0, (kind, variant)
        costs = figures["instrumentation"][kind]
        assert set(costs) == {"metrics_cost_pct", "json_log_cost_pct", "text_log_cost_pct", "all_cost_pct"}


def test_request_cpu_leaves_logging_as_it_found_it() -> None:
    """It sets logging up as webapi's process would, and may run inside another (this one)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    measure(count=5, repeats=1, only=("get",))
    assert root.handlers == handlers and root.level == level and logging.logThreads
