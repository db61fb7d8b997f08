"""`make bench`: run every benchmark section, print a table per section and, last, one JSON
line of all figures (``BENCH_RESULTS {...}``).

    python -m bench                  # every section
    python -m bench firing scale     # some sections
    python -m bench --quick          # smaller sizes, for a smoke run

Each section is a module in bench/ with ``run(quick: bool) -> dict``; targets live in TARGETS.
All servers listen on 127.0.0.1 and every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Callable
from typing import Any

SECTIONS = ("api", "request_cpu", "firing", "propagation", "scale", "e2e")

# (section, path to a figure, comparison, target, what it means)
TARGETS: list[tuple[str, str, str, float, str]] = [
    ("firing", "precision.lag_ms_p99", "<=", 50, "fire lag p99 (10 000 jobs)"),
    ("firing", "precision.missed", "<=", 0, "missed fires"),
    ("propagation", "ms_p99", "<=", 1000, "PUT → applied p99"),
    ("scale", "cold_start_s", "<=", 10, "cold start, 100 000 jobs"),
    ("scale", "peak_rss_mib", "<=", 1024, "scheduld peak RSS, 100 000 jobs"),
]


def _lookup(figures: dict[str, Any], path: str) -> Any:
    value: Any = figures
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _print_section(name: str, figures: dict[str, Any], seconds: float) -> None:
    sys.stdout.write(f"\n== {name} ({seconds:.0f} s)\n")
    for key, value in _flatten(figures).items():
        sys.stdout.write(f"  {key:<45} {value}\n")


def _flatten(figures: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in figures.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _print_targets(results: dict[str, Any], targets: list[tuple[str, str, str, float, str]]) -> None:
    sys.stdout.write("\n== targets\n")
    compare: dict[str, Callable[[float, float], bool]] = {
        "<=": lambda a, b: a <= b,
        ">=": lambda a, b: a >= b,
    }
    for section, path, op, target, meaning in targets:
        value = _lookup(results.get(section, {}), path)
        verdict = "n/a" if value is None else ("PASS" if compare[op](float(value), target) else "MISS")
        sys.stdout.write(f"  {verdict:<5} {meaning:<40} {section}.{path} = {value} (target {op} {target})\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("sections", nargs="*", help=f"any of {', '.join(SECTIONS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args(argv)
    chosen = args.sections or list(SECTIONS)
    results: dict[str, Any] = {}
    targets = list(TARGETS)
    for name in chosen:
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError:
            sys.stdout.write(f"\n== {name}: not available\n")
            continue
        started = time.monotonic()
        results[name] = module.run(quick=args.quick)
        targets += getattr(module, "TARGETS", [])
        _print_section(name, results[name], time.monotonic() - started)
    _print_targets(results, [t for t in targets if t[0] in results])
    sys.stdout.write("BENCH_RESULTS " + json.dumps(results, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
