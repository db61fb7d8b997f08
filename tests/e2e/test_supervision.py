"""`make run` heals: under python -m ecs_scheduler.local, a webapi or scheduld killed with
SIGKILL is restarted (with a log line saying so); when the AWS emulator dies the stack stops
after saying why. All of it as real processes."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import answers, eventually, session_processes, start_local_stack, tail

pytestmark = pytest.mark.slow


def _started(log: Path, name: str, after: int = 0) -> int | None:
    """The pid of the newest start of ``name`` logged after ``after``."""
    pids = [int(pid) for pid in re.findall(rf"started {name} \(pid (\d+)\)", log.read_text(errors="replace"))]
    pids = [pid for pid in pids if pid != after]
    return pids[-1] if pids else None


def test_crashed_processes_restart_and_the_emulator_dying_stops_the_stack(tmp_path: Path) -> None:
    stack = start_local_stack(tmp_path)
    log_path = stack.log
    try:
        with httpx.Client(base_url=stack.api, timeout=10) as client:
            eventually(lambda: answers(client), timeout=90, what=f"webapi\n{tail(log_path)}")
            for name in ("webapi", "scheduld"):
                first = _started(log_path, name)
                assert first is not None, tail(log_path)
                os.kill(first, signal.SIGKILL)
                eventually(
                    lambda n=name, f=first: _started(log_path, n, after=f),
                    timeout=30,
                    what=f"{name} restarted\n{tail(log_path)}",
                )
                assert re.search(rf"{name} was killed by SIGKILL; restarting it in", log_path.read_text())
            eventually(lambda: answers(client), timeout=60, what=f"webapi back\n{tail(log_path)}")
            created = client.post("/jobs", json={"taskDefinition": "sleeper-task", "schedule": "*/2"})
            assert created.status_code == 201
        emulator = _started(log_path, "aws")
        assert emulator is not None
        os.kill(emulator, signal.SIGKILL)
        code = stack.process.wait(timeout=60)
    finally:
        if stack.process.poll() is None:
            os.killpg(stack.process.pid, signal.SIGKILL)
            stack.process.wait()
    group = stack.process.pid
    eventually(lambda: not session_processes(group) or None, timeout=30, what="all processes to exit")
    output = log_path.read_text(errors="replace")
    assert code == 1, tail(log_path)
    assert "aws was killed by SIGKILL: the stack cannot run without it, stopping everything" in output
