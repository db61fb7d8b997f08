"""boto3 clients built one way for both processes, with bounded timeouts and retries.

boto3 reads endpoint, credentials and region from the standard AWS SDK environment variables;
``AWS_REGION`` (used by the other AWS SDKs and by ECS/Lambda runtimes) is honoured too when
``AWS_DEFAULT_REGION`` is not set, so either works. Every client gets its connect and read
timeouts from the ``aws`` settings section, so no call waits on a stalled endpoint for botocore's
defaults (60 s reads), and botocore's retry mode and attempts from the ``retry`` section (the
one retry policy, common/retry.py).
"""

from __future__ import annotations

import os
from typing import Any

import boto3
import botocore.session
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

from common.config import AWSSettings, RetrySettings
from common.retry import aws_config


def client(
    service: str,
    settings: AWSSettings | None = None,
    *,
    retry: RetrySettings | None = None,
    read_timeout: float | None = None,
    max_pool_connections: int | None = None,
    session: botocore.session.Session | None = None,
    **kwargs: Any,
) -> Any:
    """A boto3 client for ``service``; explicit kwargs win over the environment.

    ``read_timeout`` overrides the section's for one kind of call (a long poll must outlast its
    wait; ECS calls have their own). ``session``: the botocore session to build it from, for a
    caller that needs the client's credentials too (boto3's default session otherwise).
    """
    aws = settings or AWSSettings()
    region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION")
    if region and "region_name" not in kwargs:
        kwargs["region_name"] = region
    options: dict[str, Any] = {}
    if max_pool_connections is not None:
        options["max_pool_connections"] = max_pool_connections
    config = aws_config(
        retry or RetrySettings(),
        connect_timeout=aws.connect_timeout_seconds,
        read_timeout=read_timeout or aws.read_timeout_seconds,
        **options,
    )
    if session is not None:
        return boto3.session.Session(botocore_session=session).client(service, config=config, **kwargs)  # type: ignore[call-overload]
    return boto3.client(service, config=config, **kwargs)  # type: ignore[call-overload]


def describe_error(exc: Exception, service: str) -> str:
    """What failed, for error bodies and run records: never the endpoint URL (log that)."""
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code") or "unknown error"
        return f"{service} refused the call ({code})"
    if isinstance(exc, ConnectTimeoutError):
        return f"connecting to {service} timed out"
    if isinstance(exc, ReadTimeoutError):
        return f"{service} did not answer in time"
    if isinstance(exc, EndpointConnectionError):
        return f"could not connect to {service}"
    return f"{service} call failed ({type(exc).__name__})"
