"""Task outcomes, end to end against moto over real HTTP: fire → RunTask → the emulator's task
reaper ends the task (exit code from ``EXIT_CODE``, ``FAIL_TO_START``) → the tracker learns it
by DescribeTasks or by a task state change event → run status, job status, notifications.

moto runs in this process here (``ThreadedMotoServer`` on a free port, spoken to over HTTP):
moto's API cannot set a container's exit code, so the emulator's reaper writes outcomes into
the in-process moto models (ecs_scheduler/local/emulator.py ``MotoOutcomes``), as ``make run``
does.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import orjson
import pytest
from prometheus_client import start_http_server

from common.config import ECSSettings, NotifyDefaults, SQLiteSettings, TrackingSettings
from common.models import Job, Lease
from common.store.sqlite import SQLiteJobStore
from ecs_scheduler.local.emulator import MotoOutcomes, TaskReaper
from scheduld.executor import TaskLauncher
from scheduld.firing import Firing
from scheduld.notify import DOCUMENT_TYPE, Notifier
from scheduld.tracking import TaskEvents, Tracker
from scheduld.triggers import default_registry
from tests.scrape import value
from tests.servers import AWSJSONEndpoint, free_port

CONTAINER = "main"
FAMILY = "tracked-task"
EVENT_PATTERN = {
    "source": ["aws.ecs"],
    "detail-type": ["ECS Task State Change"],
    "detail": {"lastStatus": ["STOPPED"]},
}


class Emulator:
    def __init__(self, url: str) -> None:
        self.url = url

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield Emulator(f"http://{host}:{port}")
    finally:
        server.stop()


class World:
    """One test's cluster, store, fire path, reaper and tracker over the emulator."""

    def __init__(self, emulator: Emulator, name: str, tmp: Any, **tracking: Any) -> None:
        self.ecs = emulator.client("ecs")
        self.sqs = emulator.client("sqs")
        self.sns = emulator.client("sns")
        self.cluster = f"{name}-cluster"
        self.ecs.create_cluster(clusterName=self.cluster)
        self.ecs.register_task_definition(
            family=FAMILY,
            networkMode="bridge",
            containerDefinitions=[
                {
                    "name": CONTAINER,
                    "image": "busybox",
                    "memory": 64,
                    "logConfiguration": {
                        "logDriver": "awslogs",
                        "options": {
                            "awslogs-group": "/ecs/tracked",
                            "awslogs-region": "eu-west-1",
                            "awslogs-stream-prefix": "ecs",
                        },
                    },
                }
            ],
        )
        self.store = SQLiteJobStore(SQLiteSettings(path=tmp / "jobs.db"))
        lease = self.store.acquire_lease("scheduld", holder="me", ttl=3600)
        assert lease is not None
        self.lease: Lease = lease
        settings = ECSSettings(cluster=self.cluster)
        self.failures_queue = self.sqs.create_queue(QueueName=f"{name}-failures")["QueueUrl"]
        self.notifier = Notifier(
            sns=self.sns, sqs=self.sqs, defaults=NotifyDefaults(on_failure=[self.failures_queue])
        )
        self.tracker = Tracker(
            store=self.store,
            ecs=self.ecs,
            ecs_settings=settings,
            settings=TrackingSettings(**tracking),
            notifier=self.notifier,
        )
        self.firing = Firing(
            store=self.store,
            launcher=TaskLauncher(self.ecs, settings),
            triggers=default_registry(self.sqs),
            next_fire_time=lambda job_id: None,
            on_missing=lambda job_id: None,
            lease=lambda: self.lease,
            replica="me",
            on_recorded=self.tracker.add,
        )
        self.reaper = TaskReaper(self.ecs, self.cluster, outcomes=MotoOutcomes(region="us-east-1"))

    def fire(self, job_id: str, **environment: str) -> datetime:
        job = Job.model_validate(
            {
                "id": job_id,
                "taskDefinition": FAMILY,
                "schedule": "0 0 0",
                "launchType": "FARGATE",
                "overrides": [{"containerName": CONTAINER, "environment": environment}],
            }
        )
        self.store.create_job(job) if not self._exists(job_id) else None
        at = datetime.now(UTC).replace(microsecond=0)
        self.firing(job_id, at)
        return at

    def _exists(self, job_id: str) -> bool:
        return any(job.id == job_id for job in self.store.iter_jobs())

    def reap_until_stopped(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while self.ecs.list_tasks(cluster=self.cluster, desiredStatus="RUNNING")["taskArns"]:
            assert time.monotonic() < deadline, "emulated tasks did not end"
            self.reaper.sweep()
            time.sleep(0.05)

    def messages(self, url: str, wanted: int = 1) -> list[dict[str, Any]]:
        bodies: list[dict[str, Any]] = []
        deadline = time.monotonic() + 10
        while len(bodies) < wanted and time.monotonic() < deadline:
            for message in self.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            ).get("Messages", []):
                bodies.append(orjson.loads(message["Body"]))
        return bodies


@pytest.fixture
def world(emulator: Emulator, unique_name: str, tmp_path: Any) -> Iterator[World]:
    built = World(emulator, unique_name, tmp_path)
    yield built
    built.store.close()


def test_succeeding_job_ends_succeeded_with_exit_code_duration_and_log_link(world: World) -> None:
    world.fire("ok", SLEEP_SECONDS="0.3")
    assert world.tracker.poll() == 0  # still running
    assert world.store.list_runs("ok")[0].status == "launched"
    world.reap_until_stopped()
    assert world.tracker.poll() == 1

    run = world.store.list_runs("ok")[0]
    assert run.status == "succeeded" and run.ended_at is not None
    (task,) = run.tasks
    assert task.last_status == "STOPPED" and task.stop_code == "EssentialContainerExited"
    assert task.duration_seconds is not None and 0.2 <= task.duration_seconds < 10
    (container,) = task.containers or []
    assert container.exit_code == 0
    task_id = task.task_id.rsplit("/", 1)[-1]
    assert container.log_url == (
        "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1"
        f"#logsV2:log-groups/log-group/$252Fecs$252Ftracked/log-events/ecs$252Fmain$252F{task_id}"
    )
    job = world.store.get_job("ok")
    assert (job.last_run_status, job.consecutive_failures) == ("succeeded", 0)
    assert job.last_success == run.ended_at and job.last_failure is None
    assert world.store.open_runs() == []
    assert world.messages(world.failures_queue, wanted=0) == []  # no onSuccess target


def test_failing_job_ends_failed_with_its_exit_code_and_notifies_the_failure_queue(world: World) -> None:
    for attempt in (1, 2):
        world.fire("bad", EXIT_CODE="3", SLEEP_SECONDS="0")
        world.reap_until_stopped()
        assert world.tracker.poll() == 1
        job = world.store.get_job("bad")
        assert (job.last_run_status, job.consecutive_failures) == ("failed", attempt)
        time.sleep(1.0)  # next fire second
    run = world.store.list_runs("bad")[0]
    assert run.status == "failed"
    assert [c.exit_code for t in run.tasks for c in t.containers or []] == [3]
    (first, second) = world.messages(world.failures_queue, wanted=2)
    assert first["type"] == DOCUMENT_TYPE and first["jobId"] == "bad" and first["status"] == "failed"
    assert first["run"]["tasks"][0]["containers"][0]["exitCode"] == 3
    assert "durationSeconds" in first["run"]["tasks"][0]
    assert "token" not in first["run"] and "replica" not in first["run"]
    assert {first["runId"], second["runId"]} == {r.run_id for r in world.store.list_runs("bad")}


def test_task_that_fails_to_start_fails_the_run_with_its_stop_code_and_reason(world: World) -> None:
    world.fire("nopull", FAIL_TO_START="CannotPullContainerError: pull access denied")
    world.reap_until_stopped()
    world.tracker.poll()
    (task,) = world.store.list_runs("nopull")[0].tasks
    assert world.store.list_runs("nopull")[0].status == "failed"
    assert task.stop_code == "TaskFailedToStart"
    assert task.stopped_reason == "CannotPullContainerError: pull access denied"
    assert task.started_at is None and task.duration_seconds is None
    assert [c.exit_code for c in task.containers or []] == [None]


def test_task_running_past_timeout_is_stopped_and_the_run_timed_out(world: World) -> None:
    world.store.create_job(
        Job.model_validate(
            {
                "id": "slow",
                "taskDefinition": FAMILY,
                "schedule": "0 0 0",
                "launchType": "FARGATE",
                "timeoutSeconds": 1,
                "overrides": [{"containerName": CONTAINER, "environment": {"SLEEP_SECONDS": "600"}}],
            }
        )
    )
    world.firing("slow", datetime.now(UTC).replace(microsecond=0))
    world.reaper.sweep()  # the task starts
    assert world.tracker.check_timeouts() == 0
    assert world.tracker.check_timeouts(datetime.now(UTC) + timedelta(seconds=2)) == 1
    (arn,) = [t.task_id for t in world.store.list_runs("slow")[0].tasks]
    described = world.ecs.describe_tasks(cluster=world.cluster, tasks=[arn])["tasks"][0]
    assert described["desiredStatus"] == "STOPPED"
    assert described["stoppedReason"] == "ecs-scheduler: stopped after timeoutSeconds=1"
    assert world.tracker.poll() == 1
    run = world.store.list_runs("slow")[0]
    assert run.status == "timedOut" and run.tasks[0].timed_out is True
    job = world.store.get_job("slow")
    assert (job.last_run_status, job.consecutive_failures) == ("timedOut", 1)
    assert world.messages(world.failures_queue)[0]["status"] == "timedOut"


def test_events_from_an_eventbridge_rule_end_runs_without_describing_tasks(
    world: World, emulator: Emulator, unique_name: str
) -> None:
    """The README's rule pattern and queue, in moto's EventBridge: the emulator has no ECS
    event source, so the test puts each stopped task's description as the event AWS sends."""
    events_client = emulator.client("events")
    queue_url = world.sqs.create_queue(QueueName=f"{unique_name}-task-events")["QueueUrl"]
    queue_arn = world.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    rule = f"{unique_name}-ecs-task-stopped"
    events_client.put_rule(Name=rule, EventPattern=orjson.dumps(EVENT_PATTERN).decode())
    events_client.put_targets(Rule=rule, Targets=[{"Id": "tracker", "Arn": queue_arn}])
    world.fire("evented", EXIT_CODE="2", SLEEP_SECONDS="0")
    world.reap_until_stopped()
    (arn,) = [t.task_id for t in world.store.list_runs("evented")[0].tasks]
    stopped = world.ecs.describe_tasks(cluster=world.cluster, tasks=[arn])["tasks"][0]
    for status in ("RUNNING", "STOPPED"):  # the rule passes only the STOPPED one
        detail = {**stopped, "lastStatus": status}
        events_client.put_events(
            Entries=[
                {
                    "Source": "aws.ecs",
                    "DetailType": "ECS Task State Change",
                    "Detail": orjson.dumps(detail, default=str).decode(),
                    "Resources": [arn],
                }
            ]
        )
    events = TaskEvents(world.sqs, f"{unique_name}-task-events", wait_seconds=1)
    details, handles = events.receive()
    assert [d["lastStatus"] for d in details] == ["STOPPED"]
    world.tracker.refresh()
    assert world.tracker.apply(details) == 1
    events.delete(handles)
    assert world.tracker.describe_calls == 0
    run = world.store.list_runs("evented")[0]
    assert run.status == "failed" and run.tasks[0].containers[0].exit_code == 2  # type: ignore[index]
    assert run.tasks[0].duration_seconds is not None
    assert world.sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0).get("Messages") is None


def test_poison_and_foreign_events_are_dropped_not_redelivered(world: World, unique_name: str) -> None:
    url = world.sqs.create_queue(QueueName=f"{unique_name}-noise")["QueueUrl"]
    world.sqs.send_message(QueueUrl=url, MessageBody="not json")
    world.sqs.send_message(QueueUrl=url, MessageBody='{"detail-type": "EC2 Instance State-change"}')
    events = TaskEvents(world.sqs, url, wait_seconds=1)
    details, handles = events.receive()
    assert details == [] and len(handles) == 2
    events.delete(handles)


def test_polling_sweeps_what_events_missed(world: World) -> None:
    """Events configured but none arrived for this task (lost, or the rule was off): the
    sweep's DescribeTasks ends the run all the same."""
    tracker = Tracker(
        store=world.store,
        ecs=world.ecs,
        ecs_settings=ECSSettings(cluster=world.cluster),
        settings=TrackingSettings(),
        notifier=world.notifier,
    )
    world.fire("missed", SLEEP_SECONDS="0")
    world.reap_until_stopped()
    assert tracker.refresh() == 1  # a fresh tracker (or a new leader) finds it in the store
    assert tracker.apply([]) == 0  # no event
    assert tracker.poll() == 1
    assert tracker.describe_calls == 1
    assert world.store.list_runs("missed")[0].status == "succeeded"


def test_sns_target_delivers_the_run_document_to_its_sqs_subscriber(world: World, unique_name: str) -> None:
    topic = world.sns.create_topic(Name=f"{unique_name}-runs")["TopicArn"]
    inbox = world.sqs.create_queue(QueueName=f"{unique_name}-inbox")["QueueUrl"]
    inbox_arn = world.sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    world.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=inbox_arn)
    success_queue_arn = world.sqs.get_queue_attributes(
        QueueUrl=world.sqs.create_queue(QueueName=f"{unique_name}-ok")["QueueUrl"],
        AttributeNames=["QueueArn"],
    )["Attributes"]["QueueArn"]
    world.store.create_job(
        Job.model_validate(
            {
                "id": "told",
                "taskDefinition": FAMILY,
                "schedule": "0 0 0",
                "launchType": "FARGATE",
                "notify": {"onSuccess": [topic, success_queue_arn]},
                "overrides": [{"containerName": CONTAINER, "environment": {"SLEEP_SECONDS": "0"}}],
            }
        )
    )
    world.firing("told", datetime.now(UTC).replace(microsecond=0))
    world.reap_until_stopped()
    world.tracker.poll()
    (wrapped,) = world.messages(inbox)
    document = orjson.loads(wrapped["Message"])
    assert document["jobId"] == "told" and document["status"] == "succeeded"
    assert document["taskDefinition"] == FAMILY
    assert document["run"]["tasks"][0]["containers"][0]["exitCode"] == 0
    ok_url = world.sqs.get_queue_url(QueueName=f"{unique_name}-ok")["QueueUrl"]
    assert world.messages(ok_url)[0]["runId"] == document["runId"]
    assert world.messages(world.failures_queue, wanted=0) == []  # the job's own targets win


def test_a_launch_that_failed_is_a_failed_run_reported_at_once(world: World) -> None:
    job = Job.model_validate({"id": "nodef", "taskDefinition": "no-such-family", "schedule": "0 0 0"})
    world.store.create_job(job)
    world.firing("nodef", datetime.now(UTC).replace(microsecond=0))
    assert world.store.list_runs("nodef")[0].status == "failed"
    stored = world.store.get_job("nodef")
    assert (stored.last_run_status, stored.consecutive_failures) == ("failed", 1)
    (document,) = world.messages(world.failures_queue)
    assert document["jobId"] == "nodef" and document["run"]["failures"]


class ManyRunningTasks(AWSJSONEndpoint):
    """ECS with ``count`` tasks running: only DescribeTasks is answered (and counted), since
    moto cannot hold 10 000 tasks quickly."""

    def __init__(self) -> None:
        super().__init__()
        self.describe_calls = 0
        self.largest_batch = 0

    def answer(self, action: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if action != "DescribeTasks":
            return 400, {"__type": "InvalidParameterException", "message": action}
        self.describe_calls += 1
        self.largest_batch = max(self.largest_batch, len(body["tasks"]))
        tasks = [
            {"taskArn": arn, "lastStatus": "RUNNING", "desiredStatus": "RUNNING"} for arn in body["tasks"]
        ]
        return 200, {"tasks": tasks, "failures": []}


@pytest.mark.parametrize("running", [10_000])
def test_tracking_cost_for_many_running_tasks(
    running: int, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """DescribeTasks calls per minute at the default interval, for ``running`` tasks in flight."""
    from common.models import Run, TrackedTask

    store = SQLiteJobStore(SQLiteSettings(path=tmp_path / "jobs.db"))
    lease = store.acquire_lease("scheduld", holder="me", ttl=3600)
    assert lease is not None
    per_run = 50
    for index in range(running // per_run):
        run = Run(
            job_id=f"j{index:04d}",
            scheduled_for=datetime(2026, 1, 1, tzinfo=UTC),
            replica="me",
            token=lease.token,
        )
        store.claim_run(run, lease)
        tasks = [TrackedTask(task_id=f"arn:aws:ecs:us-east-1:1:task/c/{index}-{n}") for n in range(per_run)]
        store.finish_run(run.model_copy(update={"status": "launched", "tasks": tasks}))
    settings = TrackingSettings()
    with ManyRunningTasks() as ecs_endpoint:
        ecs = boto3.client(
            "ecs",
            endpoint_url=ecs_endpoint.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        tracker = Tracker(
            store=store,
            ecs=ecs,
            ecs_settings=ECSSettings(cluster="c"),
            settings=settings,
            notifier=Notifier(sns=None, sqs=None),
        )
        started = time.monotonic()
        assert tracker.refresh() == running // per_run
        assert tracker.poll() == 0
        took = time.monotonic() - started
    assert ecs_endpoint.describe_calls == math.ceil(running / 100)
    assert ecs_endpoint.largest_batch == 100
    per_minute = ecs_endpoint.describe_calls * 60 / settings.poll_interval_seconds
    with capsys.disabled():
        print(  # noqa: T201 - the figure the issue asks for, in make test's output
            f"\ntracking cost: {running} tasks in flight → {ecs_endpoint.describe_calls} DescribeTasks per "
            f"poll, {per_minute:.0f} per minute at poll_interval_seconds="
            f"{settings.poll_interval_seconds:.0f}; "
            f"one pass took {took:.2f} s here"
        )
    store.close()


def test_a_task_ecs_no_longer_knows_ends_its_run_failed(world: World) -> None:
    """ECS answers an unknown ARN with a MISSING failure (moto leaves it out): the run cannot
    wait for it for ever."""
    from common.models import Run, TrackedTask

    world.store.create_job(Job(id="ghost", task_definition=FAMILY, schedule="0 0 0"))
    long_ago = datetime.now(UTC) - timedelta(minutes=5)
    run = Run(
        job_id="ghost", scheduled_for=long_ago, replica="me", token=world.lease.token, claimed_at=long_ago
    )
    assert world.store.claim_run(run, world.lease)
    arn = f"arn:aws:ecs:us-east-1:123456789012:task/{world.cluster}/0123456789abcdef"
    launched = run.model_copy(update={"status": "launched", "tasks": [TrackedTask(task_id=arn)]})
    world.store.finish_run(launched.model_copy(update={"finished_at": datetime.now(UTC)}))
    assert world.tracker.refresh() == 1
    assert world.tracker.poll() == 0  # launched just now: perhaps not visible in ECS yet
    world.store.finish_run(launched.model_copy(update={"finished_at": long_ago}))
    world.tracker.forget()  # as a new leader would, read it from the store again
    assert world.tracker.refresh() == 1
    assert world.tracker.poll() == 1
    ended = world.store.list_runs("ghost")[0]
    assert ended.status == "failed"
    assert ended.tasks[0].stopped_reason == "ECS no longer knows this task (MISSING)"


def test_outcome_rules_without_a_server() -> None:
    """Pure rules: awslogs links with and without a stream prefix, non-essential containers
    not judged, moto's lastStatus STOPPED while desiredStatus is RUNNING not taken as an end,
    and an SNS-wrapped event unwrapped."""
    from common.models import TrackedTask
    from scheduld.tracking import ContainerDefinition, _task_detail, log_url, task_outcome

    arn = "arn:aws:ecs:us-east-1:1:task/c/abc"
    no_prefix = ContainerDefinition(essential=True, log_group="/ecs/x", log_region="us-east-1")
    assert log_url(no_prefix, arn, "main") == (
        "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1"
        "#logsV2:log-groups/log-group/$252Fecs$252Fx"
    )
    assert log_url(ContainerDefinition(essential=True), arn, "main") is None
    definitions = {
        "main": ContainerDefinition(essential=True),
        "sidecar": ContainerDefinition(essential=False),
    }
    stopped = {
        "taskArn": arn,
        "lastStatus": "STOPPED",
        "desiredStatus": "STOPPED",
        "stopCode": "EssentialContainerExited",
        "containers": [{"name": "main", "exitCode": 0}, {"name": "sidecar", "exitCode": 137}],
    }
    assert task_outcome(TrackedTask(task_id=arn), stopped, definitions).succeeded
    failed = {**stopped, "containers": [{"name": "main", "exitCode": 1}, {"name": "sidecar", "exitCode": 0}]}
    assert not task_outcome(TrackedTask(task_id=arn), failed, definitions).succeeded
    still_wanted = {**stopped, "desiredStatus": "RUNNING"}
    assert not task_outcome(TrackedTask(task_id=arn), still_wanted, definitions).ended
    event = {"detail-type": "ECS Task State Change", "source": "aws.ecs", "detail": stopped}
    wrapped = {"Type": "Notification", "Message": orjson.dumps(event).decode()}
    assert _task_detail(orjson.dumps(wrapped).decode()) == stopped
    assert _task_detail(orjson.dumps({"detail-type": "ECS Task State Change", "detail": {}}).decode()) is None


@pytest.fixture
def metrics_url() -> Iterator[str]:
    """This process's Prometheus registry served on 127.0.0.1, scraped as Prometheus would."""
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1")
    yield f"http://127.0.0.1:{port}/metrics"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_finished_runs_move_the_tracking_metrics(world: World, metrics_url: str) -> None:
    def figures() -> tuple[float, float, float]:
        return (
            value(metrics_url, "ecs_scheduler_runs_finished_total", status="failed"),
            value(metrics_url, "ecs_scheduler_task_duration_seconds_count"),
            value(metrics_url, "ecs_scheduler_tracking_lag_seconds_count"),
        )

    failed, durations, lags = figures()
    world.fire("measured", EXIT_CODE="3", SLEEP_SECONDS="0.3")
    world.reap_until_stopped()
    assert world.tracker.poll() == 1
    assert figures() == (failed + 1, durations + 1, lags + 1)
