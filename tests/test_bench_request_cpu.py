"""bench/request_cpu.py keeps working: every scenario answers with its expected status through
the real app (the script checks each reply). No timing is asserted (figures belong to
`make bench`)."""

from __future__ import annotations

from bench.request_cpu import measure


def test_request_cpu_measures_every_scenario() -> None:
    figures = measure(count=20, repeats=1)
    for name in ("bare", "get", "get_token", "list", "put", "post"):
        assert figures[f"{name}_us"] > 0, name
    assert figures["get_vs_bare"] > 0
