"""RunTask as one signed request (scheduld/signed_runtask.py) and its hand-over to boto3, over
real HTTP: the moto server where it can tell (tasks started, errors answered), the recording
ECS endpoint where moto cannot (the signature checked as AWS checks it, throttles, a call sent
twice with its client token). The launcher-process tests drive it through ``LaunchPool``."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import botocore.session
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from prometheus_client import REGISTRY

from common.config import AWSSettings, ECSSettings, SchedulerSettings, Settings
from scheduld.executor import TaskLauncher, ecs_client, started_by
from scheduld.launcher import LaunchPool
from scheduld.signed_runtask import Handover, SignedRunTask
from tests.scheduld.conftest import TASK_FAMILY, RecordingECS, job
from tests.servers import TEST_CREDENTIALS, MotoServer, Received

FIRE = datetime.fromisoformat("2026-01-01T00:00:00+00:00")


@pytest.fixture
def signed_for(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A SignedRunTask reaching ``url``, built as a launcher process builds it."""
    made: list[SignedRunTask] = []

    def make(url: str | None, **environment: str) -> SignedRunTask | None:
        """``url`` None: ECS's own https endpoint."""
        for name, value in {**TEST_CREDENTIALS, **environment}.items():
            monkeypatch.setenv(name, value)
        if url is None:
            monkeypatch.delenv("AWS_ENDPOINT_URL_ECS", raising=False)
            monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
        else:
            monkeypatch.setenv("AWS_ENDPOINT_URL_ECS", url)
        session = botocore.session.get_session()
        signed = SignedRunTask.for_client(ecs_client(Settings(), session=session), session)
        made.extend([signed] if signed is not None else [])
        return signed

    yield make
    for signed in made:
        signed.close()


def _params(cluster: str, token: str, **more: Any) -> dict[str, Any]:
    return {
        "cluster": cluster,
        "taskDefinition": TASK_FAMILY,
        "count": 2,
        "launchType": "FARGATE",
        "startedBy": started_by("ecs-scheduler", token),
        "clientToken": token,
        "tags": [{"key": "ecs-scheduler:job-id", "value": token}],
        **more,
    }


def test_starts_tasks_in_moto_and_hands_errors_over(
    signed_for: Any, moto: MotoServer, cluster: str, ecs_client: Any
) -> None:
    signed = signed_for(moto.url)
    assert signed is not None
    answer = signed.send(_params(cluster, "signed"))
    assert not isinstance(answer, Handover)
    listed = ecs_client.list_tasks(cluster=cluster, startedBy=started_by("ecs-scheduler", "signed"))
    assert sorted(listed["taskArns"]) == sorted(task["taskArn"] for task in answer["tasks"])
    assert len(listed["taskArns"]) == 2

    refused = signed.send(_params("no-such-cluster", "nowhere"))
    assert isinstance(refused, Handover)
    assert "ClusterNotFoundException" in refused.reason
    assert not refused.throttled and not refused.backs_off  # a refusal is no sign of load
    assert not isinstance(signed.send(_params(cluster, "again")), Handover)


def test_the_signature_verifies_as_aws_verifies_it(signed_for: Any, recording_ecs: RecordingECS) -> None:
    """What ECS does with a request: recompute the signature over the headers it names, with
    the secret key, at the time it states; a body changed after signing would not verify."""
    signed = signed_for(recording_ecs.url, AWS_SESSION_TOKEN="session-token")
    assert signed is not None
    params = _params("c", "verify", overrides={"containerOverrides": [{"name": "x", "command": ["ü"]}]})
    assert not isinstance(signed.send(params), Handover)
    (received,) = recording_ecs.received
    assert received.headers["X-Amz-Target"] == "AmazonEC2ContainerServiceV20141113.RunTask"
    assert received.headers["X-Amz-Security-Token"] == "session-token"
    credential, signed_headers, signature = _authorization(received)
    assert credential.startswith("testing/") and credential.endswith("/us-east-1/ecs/aws4_request")
    assert {"host", "x-amz-date", "x-amz-target", "content-type", "x-amz-security-token"} <= set(
        signed_headers
    )
    assert signature == _expected_signature(received, signed_headers, "testing", "session-token")
    assert signature != _expected_signature(received, signed_headers, "not-the-secret", "session-token")


def test_a_throttle_hands_calls_to_botocore_for_a_while(recording_ecs: RecordingECS) -> None:
    """The throttled call is sent again by boto3 with its client token (ECS would answer a
    started one with its tasks), counted as a throttle; the next calls go through boto3 too."""
    with _pool(recording_ecs.url) as pool:
        pool.run_task(_params("c", "warm"))
        throttles = _throttles()
        recording_ecs.throttle_next = 1
        answer = pool.run_task(_params("c", "throttled"))
        assert len(answer["tasks"]) == 2
        assert _throttles() == throttles + 1
        pool.run_task(_params("c", "after"))
    senders = [(_token(r), _sender(r)) for r in recording_ecs.received]
    assert senders == [
        ("warm", "signed"),
        ("throttled", "signed"),
        ("throttled", "botocore"),
        ("after", "botocore"),
    ]


def test_a_call_left_unanswered_goes_to_botocore_with_its_token() -> None:
    """A read timeout on the signed request: ECS may have started it, so boto3 sends the same
    call (same client token) at once; a timeout is no sign of load, so the next goes signed."""
    with _SlowFirstRunTask() as endpoint, _pool(endpoint.url, read_timeout=0.5) as pool:
        answer = pool.run_task(_params("c", "slow"))
        pool.run_task(_params("c", "next"))
    assert len(answer["tasks"]) == 2
    assert [(_token(r), _sender(r)) for r in endpoint.received] == [
        ("slow", "signed"),
        ("slow", "botocore"),
        ("next", "signed"),
    ]


def test_an_unreadable_answer_goes_to_botocore_with_its_token() -> None:
    with _GarbledFirstRunTask() as endpoint, _pool(endpoint.url) as pool:
        answer = pool.run_task(_params("c", "garbled"))
    assert len(answer["tasks"]) == 2
    assert [(_token(r), _sender(r)) for r in endpoint.received] == [
        ("garbled", "signed"),
        ("garbled", "botocore"),
    ]


def test_launches_go_through_botocore_alone_when_switched_off(recording_ecs: RecordingECS) -> None:
    with _pool(recording_ecs.url, signed=False) as pool:
        launcher = TaskLauncher(recording_ecs.client(), ECSSettings(cluster="c"), run_task=pool.run_task)
        assert len(launcher.launch(job("plain", taskCount=2), 2, scheduled=FIRE).tasks) == 2
    assert [_sender(r) for r in recording_ecs.received] == ["botocore"]


def test_botocore_sends_every_call_where_a_proxy_applies(
    signed_for: Any, recording_ecs: RecordingECS, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert signed_for(recording_ecs.url) is not None
    assert signed_for(None) is not None  # ECS's https endpoint, TLS verified as botocore does
    assert signed_for(recording_ecs.url, HTTP_PROXY="http://127.0.0.1:9") is None
    assert signed_for(None, HTTPS_PROXY="http://127.0.0.1:9") is None
    assert signed_for(None, HTTPS_PROXY="http://127.0.0.1:9", NO_PROXY="amazonaws.com") is not None


class _SlowFirstRunTask(RecordingECS):
    """Takes a second over its first RunTask: the signed request times out waiting."""

    slowed = False

    def answer(self, action: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if action == "RunTask" and not self.slowed:
            self.slowed = True
            time.sleep(1.0)
        return super().answer(action, body)


class _GarbledFirstRunTask(RecordingECS):
    """Answers its first RunTask 200 with a JSON list: no answer the launcher can read."""

    garbled = False

    def answer(self, action: str, body: dict[str, Any]) -> tuple[int, Any]:
        if action == "RunTask" and not self.garbled:
            self.garbled = True
            return 200, []
        return super().answer(action, body)


class _pool:  # noqa: N801 - used as a context manager, named like one
    """A LaunchPool of one worker process reaching ``url``."""

    def __init__(self, url: str, *, signed: bool = True, read_timeout: float = 5.0) -> None:
        self._url = url
        self._settings = Settings(
            scheduler=SchedulerSettings(launch_processes=1, max_workers=2, signed_run_task=signed),
            aws=AWSSettings(ecs_read_timeout_seconds=read_timeout),
        )
        self._monkeypatch = pytest.MonkeyPatch()

    def __enter__(self) -> LaunchPool:
        for name, value in {**TEST_CREDENTIALS, "AWS_ENDPOINT_URL_ECS": self._url}.items():
            self._monkeypatch.setenv(name, value)  # spawned workers read the environment
        self.pool = LaunchPool(self._settings).start()
        return self.pool

    def __exit__(self, *exc: object) -> None:
        self.pool.close()
        self._monkeypatch.undo()


def _throttles() -> float:
    return REGISTRY.get_sample_value("ecs_scheduler_run_task_throttles_total") or 0.0


def _token(received: Received) -> str:
    token: str = json.loads(received.body)["clientToken"]
    return token


def _sender(received: Received) -> str:
    return "signed" if received.headers["User-Agent"].startswith("ecs-scheduler-launcher") else "botocore"


def _authorization(received: Received) -> tuple[str, list[str], str]:
    scheme, _, rest = received.headers["Authorization"].partition(" ")
    assert scheme == "AWS4-HMAC-SHA256"
    parts = dict(part.strip().split("=", 1) for part in rest.split(","))
    return parts["Credential"], parts["SignedHeaders"].split(";"), parts["Signature"]


def _expected_signature(received: Received, signed_headers: list[str], secret: str, token: str) -> str:
    headers = {name: value for name, value in received.headers.items() if name.lower() in signed_headers}
    url = f"http://{received.headers['Host']}{received.path}"
    request = AWSRequest(method="POST", url=url, data=received.body, headers=headers)
    request.context["timestamp"] = received.headers["X-Amz-Date"]
    auth = SigV4Auth(Credentials("testing", secret, token), "ecs", "us-east-1")
    canonical = auth.canonical_request(request)
    return str(auth.signature(auth.string_to_sign(request, canonical), request))
