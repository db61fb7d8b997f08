"""RunTask as one signed HTTP request: a herd's launches at a fraction of botocore's CPU.

A boto3 ``run_task`` costs 0.55–0.8 ms of CPU here: botocore's event hooks, parameter
validation, serialiser, its urllib3 adapter and response parser wrap a request that is one JSON
document. The same request signed as botocore signs it (scheduld/sigv4.py) and sent over a
kept connection (scheduld/connections.py) costs 0.1–0.2 ms (bench/README.md, "Signed RunTask
requests" and "Signing once per endpoint"), and a herd of 1 000 jobs needs 1 000 of them on
the same two cores as everything else.

So the launcher processes send each call this way while ECS answers 200, and hand the call to
the boto3 client in every other case: an error answer, a throttle, a timeout, a broken
connection. botocore then does what it always does (retries, its adaptive rate limiter, error
parsing), and the call carries the same client token, so ECS answers a call it already started
with that call's outcome instead of new tasks. After a throttle or a server error the launcher
leaves every call to botocore for ``BOTOCORE_ONLY_SECONDS``, so a struggling ECS sees botocore's
backoff alone, not a second sender.

Used only where botocore would add nothing to the request: the ECS API speaks ``json``, no proxy
applies to the endpoint and no client certificate is configured. TLS is verified against the
same CA bundle botocore uses (``AWS_CA_BUNDLE`` / ``ca_bundle``, else certifi's).
"""

from __future__ import annotations

import http.client
import json
import logging
import ssl
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import botocore
import botocore.session
from botocore.exceptions import BotoCoreError
from botocore.httpsession import get_cert_path
from botocore.utils import get_environ_proxies

from scheduld.connections import ThreadConnections
from scheduld.executor import THROTTLE_CODES
from scheduld.sigv4 import JsonPostSigner

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient

logger = logging.getLogger(__name__)

BOTOCORE_ONLY_SECONDS = 60.0
_USER_AGENT = f"ecs-scheduler-launcher botocore/{botocore.__version__}"


@dataclass(frozen=True)
class Handover:
    """Why a call goes to botocore: ``throttled`` counts as a throttled attempt."""

    reason: str
    throttled: bool = False
    backs_off: bool = False  # every call goes to botocore for BOTOCORE_ONLY_SECONDS


class SignedRunTask:
    """Thread-safe. ``send(params)`` returns ECS's answer as a dict, or a ``Handover`` when
    the call must go through botocore instead (nothing raised)."""

    def __init__(
        self,
        *,
        endpoint_url: str,
        region: str,
        signing_name: str,
        target: str,
        content_type: str,
        credentials: Any,
        connections: ThreadConnections,
    ) -> None:
        url = endpoint_url.rstrip("/") + "/"
        self._credentials = credentials  # botocore (refreshable) credentials
        self._connections = connections
        self._path = urlsplit(url).path or "/"
        self._signer = JsonPostSigner(
            url=url,
            region=region,
            service=signing_name,
            headers={"Content-Type": content_type, "X-Amz-Target": target, "User-Agent": _USER_AGENT},
        )
        self._botocore_until = 0.0  # a float written whole: no lock needed

    @classmethod
    def for_client(cls, ecs: ECSClient, session: botocore.session.Session) -> SignedRunTask | None:
        """The signed path for ``ecs`` (built from ``session``), or None where botocore must send
        every call itself (another protocol, a proxy, a client certificate, no credentials)."""
        meta = ecs.meta
        config: Any = meta.config  # botocore.config.Config: its options are set dynamically
        model = meta.service_model
        url = meta.endpoint_url
        parts = urlsplit(url)
        why_not = (
            "the ECS API does not speak json"
            if model.protocol != "json"
            else "a proxy applies to the endpoint"
            if config.proxies or get_environ_proxies(url)
            else "a client certificate is configured"
            if config.client_cert
            else "the endpoint is neither http nor https"
            if parts.scheme not in ("http", "https") or not parts.hostname
            else None
        )
        credentials = session.get_credentials()
        if why_not is None and credentials is None:
            why_not = "no credentials were found"
        if why_not is not None:
            logger.info("RunTask goes through botocore alone: %s", why_not)
            return None
        return cls(
            endpoint_url=url,
            region=meta.region_name,
            signing_name=model.signing_name,
            target=f"{model.metadata['targetPrefix']}.RunTask",
            content_type=f"application/x-amz-json-{model.metadata['jsonVersion']}",
            credentials=credentials,
            connections=ThreadConnections(
                host=parts.hostname or "",
                port=parts.port,
                tls=_tls(session) if parts.scheme == "https" else None,
                connect_timeout=config.connect_timeout,
                read_timeout=config.read_timeout,
            ),
        )

    def send(self, params: dict[str, Any]) -> dict[str, Any] | Handover:
        if time.monotonic() < self._botocore_until:
            return Handover("botocore alone after a throttle or a server error")
        body = json.dumps(params, separators=(",", ":")).encode()
        try:
            headers = self._signed(body)
        except BotoCoreError as exc:  # credentials that cannot be refreshed: botocore tells why
            return Handover(f"not signed ({type(exc).__name__})")
        try:
            status, data = self._connections.post(self._path, body, headers)
        except (http.client.HTTPException, OSError) as exc:
            return Handover(f"no answer ({type(exc).__name__})")
        if status == 200:
            try:
                answer = json.loads(data)
            except ValueError:
                answer = None
            if not isinstance(answer, dict):  # ECS may have started it: its token tells
                return Handover("200 with an answer that is not a JSON object")
            return answer
        code = _error_code(data)
        throttled = code in THROTTLE_CODES
        if throttled or status >= 500:
            self._botocore_until = time.monotonic() + BOTOCORE_ONLY_SECONDS
            return Handover(f"{status} {code}", throttled=throttled, backs_off=True)
        return Handover(f"{status} {code}")

    def close(self) -> None:
        self._connections.close()

    def _signed(self, body: bytes) -> dict[str, str]:
        # as botocore's own signer does: frozen credentials (refreshed here when due)
        signed = self._signer.sign(body, self._credentials.get_frozen_credentials())
        return {"Host": self._signer.host, **signed}


def _tls(session: botocore.session.Session) -> ssl.SSLContext:
    """Certificates and host names verified against botocore's CA bundle."""
    return ssl.create_default_context(cafile=get_cert_path(session.get_config_variable("ca_bundle") or True))


def _error_code(data: bytes) -> str:
    """The error code of a JSON-protocol error answer (``__type``, after any ``#``)."""
    try:
        kind = str(json.loads(data).get("__type", ""))
    except (ValueError, AttributeError):
        return "unknown"
    return kind.rsplit("#", 1)[-1] or "unknown"
