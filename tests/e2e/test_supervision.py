"""`make run` heals: under python -m ecs_scheduler.local, a webapi or scheduld killed with
SIGKILL is restarted (with a log line saying so); when the AWS emulator dies the stack stops
after saying why. All of it as real processes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import eventually, session_processes, tail
from tests.servers import ROOT, free_port

pytestmark = pytest.mark.slow


def _started(log: Path, name: str, after: int = 0) -> int | None:
    """The pid of the newest start of ``name`` logged after ``after``."""
    pids = [int(pid) for pid in re.findall(rf"started {name} \(pid (\d+)\)", log.read_text(errors="replace"))]
    pids = [pid for pid in pids if pid != after]
    return pids[-1] if pids else None


def _answers(client: httpx.Client) -> bool:
    try:
        return client.get("/").status_code == 200
    except httpx.HTTPError:
        return False


def test_crashed_processes_restart_and_the_emulator_dying_stops_the_stack(tmp_path: Path) -> None:
    aws_port, api_port = free_port(), free_port()
    log_path = tmp_path / "stack.log"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "STORE__", "SQS__", "ECS__", "WEBAPI__", "SCHEDULER__"))
        and key not in {"RUN_ENV", "COMPONENT_NAME"}
    }
    env.update(
        LOCAL_AWS_PORT=str(aws_port),
        WEBAPI__PORT=str(api_port),
        STORE__SQLITE__PATH=str(tmp_path / "data" / "jobs.db"),
    )
    with log_path.open("wb") as log:
        stack = subprocess.Popen(
            [sys.executable, "-m", "ecs_scheduler.local"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=10) as client:
            eventually(lambda: _answers(client), timeout=90, what=f"webapi\n{tail(log_path)}")
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
            eventually(lambda: _answers(client), timeout=60, what=f"webapi back\n{tail(log_path)}")
            created = client.post("/jobs", json={"taskDefinition": "sleeper-task", "schedule": "*/2"})
            assert created.status_code == 201
        emulator = _started(log_path, "aws")
        assert emulator is not None
        os.kill(emulator, signal.SIGKILL)
        code = stack.wait(timeout=60)
    finally:
        if stack.poll() is None:
            os.killpg(stack.pid, signal.SIGKILL)
            stack.wait()
    eventually(lambda: not session_processes(stack.pid) or None, timeout=30, what="all processes to exit")
    output = log_path.read_text(errors="replace")
    assert code == 1, tail(log_path)
    assert "aws was killed by SIGKILL: the stack cannot run without it, stopping everything" in output
