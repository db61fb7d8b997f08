"""A benchmark endpoint in a process of its own, so its CPU is not the stack's or the bench's:

    python -m bench.endpoint ecs   # FakeAWS: records each RunTask's arrival time and job
    python -m bench.endpoint sqs   # FastSQS: a constant-time SQS

Prints ``PORT <n>`` once listening. Each ``arrivals`` line on stdin is answered with one JSON
line of the RunTask arrivals so far, ``[[time, job id, count], ...]``; end of stdin stops it.
``EndpointProcess`` drives it from a benchmark.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import IO, Any

from bench.fake_aws import FakeAWS
from bench.fast_sqs import FastSQS


class EndpointProcess:
    def __init__(self, kind: str) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.endpoint", kind],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        first = self._stdout.readline().split()
        if first[:1] != ["PORT"]:
            self.stop()
            raise RuntimeError(f"bench endpoint {kind} did not start: {first}")
        self.url = f"http://127.0.0.1:{first[1]}"
        self.pid = self._process.pid

    @property
    def _stdout(self) -> IO[str]:
        assert self._process.stdout is not None
        return self._process.stdout

    def arrivals(self) -> list[tuple[float, str, int]]:
        assert self._process.stdin is not None
        self._process.stdin.write("arrivals\n")
        self._process.stdin.flush()
        return [(float(at), str(job), int(count)) for at, job, count in json.loads(self._stdout.readline())]

    def stop(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def __enter__(self) -> EndpointProcess:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def main(kind: str) -> None:
    server = (FastSQS() if kind == "sqs" else FakeAWS()).start()
    sys.stdout.write(f"PORT {server.port}\n")
    sys.stdout.flush()
    for line in sys.stdin:
        if line.strip() == "arrivals":
            rows = [[a.at, a.job_id, a.count] for a in list(server.arrivals)]
            sys.stdout.write(json.dumps(rows) + "\n")
            sys.stdout.flush()
    os._exit(0)  # open keep-alive connections die with the process, without teardown noise


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "ecs")
