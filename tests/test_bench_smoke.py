"""`make bench` keeps working: one quick section runs end to end and prints its JSON line.
No timing is asserted here; figures belong to `make bench` (see bench/README.md)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.servers import ROOT

pytestmark = pytest.mark.slow


def test_bench_runs_and_prints_results() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "propagation"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    line = next(line for line in result.stdout.splitlines() if line.startswith("BENCH_RESULTS "))
    figures = json.loads(line.removeprefix("BENCH_RESULTS "))
    assert figures["propagation"]["changes"] == 15
    assert figures["propagation"]["ms_p50"] > 0
