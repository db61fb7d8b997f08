"""scheduld's health, readiness and metrics over HTTP, two replicas as OS processes on one
SQLite store and a moto server of the test's own (so it can be stopped).

One leader and one standby, each saying so; metrics that move as a job fires, as a launch
fails (its task definition is missing in moto), as a poison message is dead-lettered; the
standby taking over when the leader stops; readiness failing once the emulator is gone; and
JSON log lines naming the replica and, for a fire, the job.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from common.bus.sqs import SQSEventBus
from common.config import SQLiteSettings, SQSSettings
from common.models import ChangeEvent
from common.store.sqlite import SQLiteJobStore
from tests.conftest import aws_client
from tests.e2e.conftest import eventually, tail
from tests.scheduld.conftest import create_cluster, job
from tests.scrape import scrape, value
from tests.servers import MotoServer, component_env, free_port, moto_server, stop_process, wait_for_http


@dataclass
class Replica:
    url: str
    log: Path
    process: subprocess.Popen[bytes]

    def ready(self) -> tuple[int, dict[str, Any]]:
        reply = httpx.get(f"{self.url}/readyz", timeout=10)
        return reply.status_code, reply.json()

    def metric(self, name: str, **labels: str) -> float:
        return value(f"{self.url}/metrics", name, **labels)


@pytest.fixture
def own_moto() -> Iterator[MotoServer]:
    with moto_server() as server:
        yield server


def test_two_replicas_health_readiness_and_metrics(
    own_moto: MotoServer, tmp_path: Path, unique_name: str
) -> None:
    sqs = aws_client(own_moto, "sqs")
    cluster = create_cluster(own_moto, f"{unique_name}-cluster")
    sqs_settings = SQSSettings(queue_name=f"{unique_name}-ops", dead_letter_queue_name=f"{unique_name}-dlq")
    env = component_env(
        moto=own_moto,
        sqlite_path=tmp_path / "jobs.db",
        extra={
            "COMPONENT_NAME": "scheduld",
            "LOG_FORMAT": "json",
            "ECS__CLUSTER": cluster,
            "SQS__QUEUE_NAME": sqs_settings.queue_name,
            "SQS__DEAD_LETTER_QUEUE_NAME": sqs_settings.dead_letter_queue_name,
        },
    )
    replicas: list[Replica] = []
    store = SQLiteJobStore(SQLiteSettings(path=tmp_path / "jobs.db"))
    try:
        for n in range(2):
            port = free_port()
            log = tmp_path / f"scheduld-{n}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", "ecs_scheduler"],
                    env={**env, "SCHEDULER__HTTP_PORT": str(port)},
                    stdout=out,
                    stderr=out,
                )
            replicas.append(Replica(f"http://127.0.0.1:{port}", log, process))
        for replica in replicas:
            wait_for_http(f"{replica.url}/healthz", process=replica.process)
            assert httpx.get(f"{replica.url}/healthz").json()["status"] == "ok"

        def roles() -> dict[str, Replica] | None:
            seen = {body["role"]: r for r in replicas for status, body in [r.ready()] if status == 200}
            return seen if set(seen) == {"leader", "standby"} else None

        by_role = eventually(roles, timeout=20, what="a ready leader and a ready standby")
        leader, standby = by_role["leader"], by_role["standby"]
        _, body = leader.ready()
        assert body["fencingToken"] >= 1 and 0 <= body["leaseAgeSeconds"] < 3
        assert body["scheduleLoaded"] and body["checks"]["store"]["status"] == "ok"
        _, body = standby.ready()
        assert body["fencingToken"] is None and body["jobsScheduled"] == 0
        assert (leader.metric("ecs_scheduler_leader"), standby.metric("ecs_scheduler_leader")) == (1, 0)

        # one job that launches, one whose task definition does not exist, one poison message
        store.create_job(job("good", schedule="*/2", taskCount=2))
        store.create_job(job("bad", taskDefinition="no-such-task-definition", schedule="*/2"))
        bus = SQSEventBus.from_settings(sqs_settings, client=sqs)
        try:
            for job_id in ("good", "bad"):
                bus.publish(ChangeEvent(op="add", job_id=job_id))
        finally:
            bus.close()
        ops_queue = sqs.get_queue_url(QueueName=sqs_settings.queue_name)["QueueUrl"]
        sqs.send_message(QueueUrl=ops_queue, MessageBody="{")

        def moved() -> dict[str, float] | None:
            samples = scrape(f"{leader.url}/metrics")

            def get(name: str, **labels: str) -> float:
                return samples.get((name, frozenset(labels.items())), 0.0)

            figures = {
                "launched": get("ecs_scheduler_fires_total", outcome="launched"),
                "failed": get("ecs_scheduler_fires_total", outcome="failed"),
                "started": get("ecs_scheduler_tasks_started_total"),
                "calls_ok": get("ecs_scheduler_run_task_calls_total", result="ok"),
                "calls_error": get("ecs_scheduler_run_task_calls_total", result="error"),
                "lag": get("ecs_scheduler_fire_lag_seconds_count"),
                "failures": sum(
                    v for (n, _), v in samples.items() if n == "ecs_scheduler_run_task_failures_total"
                ),
                "dead_lettered": get("ecs_scheduler_events_consumed_total", result="dead_lettered"),
                "dlq": get("ecs_scheduler_events_dead_lettered_total"),
                "applied": get("ecs_scheduler_events_consumed_total", result="applied"),
                "scheduled": get("ecs_scheduler_jobs_scheduled"),
            }
            wanted = all(figures[k] >= 1 for k in figures if k != "started") and figures["started"] >= 2
            return figures if wanted else None

        figures = eventually(moved, timeout=20, what=f"metrics to move\n{tail(leader.log)}")
        assert figures["scheduled"] == 2
        assert standby.metric("ecs_scheduler_fires_total", outcome="launched") == 0

        # the leader steps down on SIGTERM (releasing its lease); the standby takes over
        assert stop_process(leader.process) == 0, tail(leader.log)
        eventually(
            lambda: (r := standby.ready())[0] == 200 and r[1]["role"] == "leader",
            timeout=15,
            what=f"the standby to lead\n{tail(standby.log)}",
        )
        assert standby.metric("ecs_scheduler_leadership_changes_total", change="elected") == 1
        assert standby.metric("ecs_scheduler_leader") == 1

        # the emulator goes away: the ops queue fails its check, the process stays alive
        stop_process(own_moto.process)
        status, body = eventually(lambda: (r := standby.ready())[0] == 503 and r, timeout=10, what="503")
        assert body["status"] == "not ready" and body["checks"]["queue"]["status"] != "ok"
        assert body["checks"]["store"]["status"] == "ok"
        assert httpx.get(f"{standby.url}/healthz").status_code == 200
    finally:
        for replica in replicas:
            stop_process(replica.process)
        store.close()

    entries = [json.loads(line) for line in leader.log.read_text().splitlines() if line.strip()]
    assert all(e["component"] == "scheduld" for e in entries)
    assert all(e["replica"] for e in entries if e["logger"].startswith("scheduld."))
    fired = [e for e in entries if e["message"].startswith("job good fired")]
    assert fired and all(e["job_id"] == "good" and e["scheduled_for"] for e in fired)
