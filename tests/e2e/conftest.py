"""Helpers for tests that run the components as separate OS processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx

from tests.servers import ROOT, free_port

T = TypeVar("T")


def eventually(check: Callable[[], T | None], *, timeout: float, interval: float = 0.2, what: str = "") -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or check}: last={last!r}")


def session_processes(session_id: int) -> list[int]:
    """PIDs still alive in a session (a process group leader started with start_new_session)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        # fields after the command: state ppid pgrp session ...
        if int(fields[3]) == session_id and fields[0] != "Z":
            alive.append(int(entry.name))
    return alive


def tail(path: Path, lines: int = 60) -> str:
    if not path.exists():
        return "<no log>"
    return os.linesep.join(path.read_text(errors="replace").splitlines()[-lines:])


_OWN_PREFIXES = ("AWS_", "STORE__", "SQS__", "ECS__", "WEBAPI__", "SCHEDULER__", "TRACKING__")


def clean_env() -> dict[str, str]:
    """This environment without the project's and boto3's settings, so a started process
    configures itself as a user's shell would."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(_OWN_PREFIXES) and key not in {"RUN_ENV", "COMPONENT_NAME"}
    }


@dataclass(frozen=True)
class LocalStack:
    """``make run``'s stack as a process group: its webapi URL, emulator port and output."""

    process: subprocess.Popen[bytes]
    api: str
    aws_port: int
    log: Path


def start_local_stack(tmp_path: Path, **settings: str) -> LocalStack:
    """``python -m ecs_scheduler.local`` on free ports with its store in ``tmp_path``, in a
    session of its own (so the test can signal the whole group, as a terminal would)."""
    aws_port, api_port = free_port(), free_port()
    log_path = tmp_path / "stack.log"
    env = clean_env() | {
        "LOCAL_AWS_PORT": str(aws_port),
        "WEBAPI__PORT": str(api_port),
        "STORE__SQLITE__PATH": str(tmp_path / "data" / "jobs.db"),
        **settings,
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "ecs_scheduler.local"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return LocalStack(process=process, api=f"http://127.0.0.1:{api_port}", aws_port=aws_port, log=log_path)


def answers(client: httpx.Client) -> bool:
    """webapi is up and serving."""
    try:
        return client.get("/").status_code == 200
    except httpx.HTTPError:
        return False
