"""boto3 clients built one way for both processes.

boto3 reads endpoint, credentials and region from the standard AWS SDK environment variables;
``AWS_REGION`` (used by the other AWS SDKs and by ECS/Lambda runtimes) is honoured too when
``AWS_DEFAULT_REGION`` is not set, so either works.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from botocore.config import Config


def client(service: str, *, config: Config | None = None, **kwargs: Any) -> Any:
    """A boto3 client for ``service``; explicit kwargs win over the environment."""
    region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION")
    if region and "region_name" not in kwargs:
        kwargs["region_name"] = region
    return boto3.client(service, config=config, **kwargs)  # type: ignore[call-overload]
