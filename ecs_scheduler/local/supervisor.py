"""`make run`'s process supervisor: start the Procfile's processes, restart a crashed one with
backoff, and stop the stack only on Ctrl-C (SIGINT/SIGTERM) or when an essential process (the
AWS emulator) dies, saying why.

honcho, which ran the stack before, stops everything when any process exits; supervisord and
circus need their own configuration files and daemons for what is here ~150 lines. Each
process runs ``sh -c <command>`` in its own process group, so a signal reaches all of it and
Ctrl-C reaches only the supervisor, which stops the others in order; output lines are
prefixed with the time and the process name, as honcho did.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

STABLE_SECONDS = 30.0
"""A process that ran this long before dying restarts after the first backoff again."""


@dataclass
class Program:
    name: str
    command: str
    essential: bool = False
    """When it dies the stack stops (the others cannot work without it)."""
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    restart_at: float | None = None
    readers: list[threading.Thread] = field(default_factory=list)


def read_procfile(path: Path) -> list[tuple[str, str]]:
    entries = []
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, command = line.split(":", 1)
            entries.append((name.strip(), command.strip()))
    return entries


class Supervisor:
    def __init__(
        self,
        programs: list[Program],
        *,
        env: Mapping[str, str],
        cwd: Path,
        out: IO[str] | None = None,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        grace: float = 20.0,
    ) -> None:
        self._programs = programs
        self._env = dict(env)
        self._cwd = cwd
        self._out = out or sys.stdout
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._grace = grace
        self._stop = threading.Event()
        self._write_lock = threading.Lock()
        self._width = max(len(p.name) for p in programs + [Program("system", "")])

    def run(self) -> int:
        """Until Ctrl-C (0) or an essential process's death (1)."""
        previous = {sig: signal.signal(sig, self._request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            for program in self._programs:
                self._start(program)
            code = self._watch()
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return code

    def _request_stop(self, signum: int, frame: FrameType | None) -> None:
        self._stop.set()

    def _watch(self) -> int:
        while not self._stop.wait(0.2):
            now = time.monotonic()
            for program in self._programs:
                if program.process is None:
                    if program.restart_at is not None and now >= program.restart_at:
                        self._start(program)
                    continue
                code = program.process.poll()
                if code is None:
                    continue
                _reap_group(program.process)  # what it left behind must not hold its ports
                program.process = None
                why = _exit_reason(code)
                if program.essential:
                    self.say(f"{program.name} {why}: the stack cannot run without it, stopping everything")
                    return 1
                if now - program.started_at >= STABLE_SECONDS:
                    program.restarts = 0
                delay = min(self._max_backoff, self._backoff * 2**program.restarts)
                program.restarts += 1
                program.restart_at = now + delay
                self.say(f"{program.name} {why}; restarting it in {delay:g} s (restart {program.restarts})")
        self.say("stopping (Ctrl-C)")
        return 0

    def _start(self, program: Program) -> None:
        program.restart_at = None
        program.started_at = time.monotonic()
        process = subprocess.Popen(
            ["/bin/sh", "-c", program.command],
            cwd=self._cwd,
            env=self._env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            process_group=0,  # its own group (signalled as one), still in the stack's session
        )
        program.process = process
        reader = threading.Thread(target=self._relay, args=(program.name, process), daemon=True)
        reader.start()
        program.readers.append(reader)
        self.say(f"started {program.name} (pid {process.pid})")

    def _relay(self, name: str, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            self._write(name, raw.decode(errors="replace").rstrip("\n"))

    def say(self, message: str) -> None:
        self._write("system", message)

    def _write(self, name: str, line: str) -> None:
        with self._write_lock:
            self._out.write(f"{time.strftime('%H:%M:%S')} {name:<{self._width}} | {line}\n")
            self._out.flush()

    def _stop_all(self) -> None:
        """The apps first (they may still finish launches against the emulator), then the
        essential processes."""
        self._stop_group([p for p in self._programs if not p.essential])
        self._stop_group([p for p in self._programs if p.essential])
        for program in self._programs:
            for reader in program.readers:
                reader.join(timeout=2)

    def _stop_group(self, programs: list[Program]) -> None:
        running = [p for p in programs if p.process is not None and p.process.poll() is None]
        for program in running:
            _signal_group(program, signal.SIGTERM)
        deadline = time.monotonic() + self._grace
        for program in running:
            assert program.process is not None
            try:
                program.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"{program.name} did not stop within {self._grace:g} s; killing it")
                _signal_group(program, signal.SIGKILL)
                program.process.wait()


def _signal_group(program: Program, sig: signal.Signals) -> None:
    assert program.process is not None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(program.process.pid, sig)


def _reap_group(process: subprocess.Popen[bytes]) -> None:
    """Kill whatever is left in a dead program's process group."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _exit_reason(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
        return f"was killed by signal {-code}"
    return f"exited with code {code}"
