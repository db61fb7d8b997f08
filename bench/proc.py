"""CPU time of processes from /proc, for the benchmarks and the load generator alike (which
imports nothing heavier than this)."""

from __future__ import annotations

import os
from pathlib import Path


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """User + system CPU of a process or, with ``children``, of its live descendants instead
    (scheduld's launcher processes), from /proc; 0 for a process that is gone."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            if current != pid or not children:
                fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / tick
            if children:
                for task in Path(f"/proc/{current}/task").iterdir():
                    pending += [int(child) for child in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total
