"""bench/load.py puts the servers it loads together on one core for the run, every thread of
them, and gives each thread back the cores it had."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bench.load import servers_on_one_core

# a process with a second thread, both waiting
TWO_THREADS = (
    "import threading, time; threading.Thread(target=time.sleep, args=(60,)).start(); time.sleep(60)"
)


def _affinities(pid: int) -> dict[int, set[int]]:
    return {int(task): os.sched_getaffinity(int(task)) for task in os.listdir(f"/proc/{pid}/task")}


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores to share out")
def test_servers_share_one_core_while_loaded_and_get_theirs_back() -> None:
    server = subprocess.Popen([sys.executable, "-c", TWO_THREADS])
    try:
        while len(os.listdir(f"/proc/{server.pid}/task")) < 2:
            pass  # the second thread is starting
        before, mine = _affinities(server.pid), os.sched_getaffinity(0)
        first = min(mine)
        with servers_on_one_core([server.pid]):
            during = _affinities(server.pid)
            assert len(during) == 2 and all(cores == {first} for cores in during.values())
            assert os.sched_getaffinity(0) == mine - {first}
        assert _affinities(server.pid) == before
        assert os.sched_getaffinity(0) == mine
    finally:
        server.kill()
        server.wait()
