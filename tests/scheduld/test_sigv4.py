"""scheduld/sigv4.py against botocore's own SigV4 signer: the same request signed both ways
gives the same headers, byte for byte (the end-to-end check of a signed RunTask as ECS checks
it is tests/scheduld/test_signed_runtask.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduld.sigv4 import JsonPostSigner

HEADERS = {
    "Content-Type": "application/x-amz-json-1.1",
    "X-Amz-Target": "AmazonEC2ContainerServiceV20141113.RunTask",
    "User-Agent": "ecs-scheduler-launcher botocore/1",
}
URLS = [
    "http://127.0.0.1:50123/",
    "https://ecs.eu-west-1.amazonaws.com/",
    "https://ecs.eu-west-1.amazonaws.com:443/",
    "http://LocalHost:8080/some%20prefix/",
    "http://[::1]:4566/",
]


def _botocore_headers(url: str, body: bytes, credentials: Credentials) -> dict[str, str]:
    request = AWSRequest(method="POST", url=url, data=body, headers=dict(HEADERS))
    SigV4Auth(credentials.get_frozen_credentials(), "ecs", "eu-west-1").add_auth(request)
    return dict(request.headers.items())


def _same_second_as_botocore(
    signer: JsonPostSigner, url: str, body: bytes, credentials: Credentials
) -> tuple[dict[str, str], dict[str, str]]:
    """Both signers' headers for one request, signed within the same second."""
    while True:
        ours = signer.sign(body, credentials.get_frozen_credentials())
        theirs = _botocore_headers(url, body, credentials)
        if ours["X-Amz-Date"] == theirs["X-Amz-Date"]:
            return ours, theirs


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("token", [None, "session token with  inner   spaces "])
def test_signs_as_botocore_signs(url: str, token: str | None) -> None:
    signer = JsonPostSigner(url=url, region="eu-west-1", service="ecs", headers=HEADERS)
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    body = '{"cluster":"c","overrides":{"command":["ü","a  b"]}}'.encode()
    ours, theirs = _same_second_as_botocore(signer, url, body, credentials)
    assert ours == theirs
    assert "Host" not in ours  # the HTTP client's to add, as it is for botocore's requests


@settings(max_examples=60, deadline=None)
@given(body=st.binary(max_size=2048), secret=st.text(min_size=1, max_size=40))
def test_signs_any_body_with_any_secret_as_botocore(body: bytes, secret: str) -> None:
    url = URLS[0]
    signer = JsonPostSigner(url=url, region="eu-west-1", service="ecs", headers=HEADERS)
    credentials = Credentials("AKID", secret, None)
    ours, theirs = _same_second_as_botocore(signer, url, body, credentials)
    assert ours == theirs


def test_the_signing_key_follows_the_day_and_the_secret() -> None:
    """The key kept for a day is derived again on the next day and for a rotated secret."""
    url = URLS[0]
    signer = JsonPostSigner(url=url, region="eu-west-1", service="ecs", headers=HEADERS)
    late = datetime(2026, 12, 1, 23, 59, 59, tzinfo=UTC)
    moments = [late, late, late + timedelta(seconds=1), late + timedelta(seconds=1)]
    secrets = ["first", "second", "second", "first"]
    signatures = set()
    for moment, secret in zip(moments, secrets, strict=True):
        credentials = Credentials("AKID", secret, None)
        headers = signer.sign(b"{}", credentials, now=moment)
        signature = headers["Authorization"].rsplit("Signature=", 1)[1]
        assert signature == _recomputed(url, b"{}", headers, credentials)
        signatures.add(signature)
    assert len(signatures) == 4


def _recomputed(url: str, body: bytes, headers: dict[str, str], credentials: Credentials) -> str:
    """The signature botocore computes for ``headers`` at the time they state."""
    request = AWSRequest(method="POST", url=url, data=body, headers=dict(HEADERS))
    request.context["timestamp"] = headers["X-Amz-Date"]
    request.headers["X-Amz-Date"] = headers["X-Amz-Date"]
    auth = SigV4Auth(credentials, "ecs", "eu-west-1")
    canonical = auth.canonical_request(request)
    return str(auth.signature(auth.string_to_sign(request, canonical), request))
