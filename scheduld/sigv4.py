"""AWS Signature V4 for the one request the launchers sign over and over: a POST of a JSON
document to one endpoint, with the same headers each time but the date.

botocore's ``SigV4Auth.add_auth`` rebuilds that request's host, path and header set on every
call through its email-based header maps and derives the signing key afresh: about 90 µs of a
signed RunTask's 300–360 (bench/README.md, "Signing once per endpoint"). Here botocore's own
signer works out the parts that never change (the host as it signs it, the canonical path),
once, and each call hashes and signs only what does: the body, the date, the session token.
The signing key is kept for its day, as AWS's SDKs keep it. Tests recompute every signature
with botocore's ``SigV4Auth`` (tests/scheduld/test_sigv4.py).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from hashlib import sha256
from typing import Protocol

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

ALGORITHM = "AWS4-HMAC-SHA256"


class Credentials(Protocol):
    """botocore's frozen credentials."""

    @property
    def access_key(self) -> str: ...

    @property
    def secret_key(self) -> str: ...

    @property
    def token(self) -> str | None: ...


class JsonPostSigner:
    """Signs POSTs of ``headers`` plus a body to ``url``; thread-safe."""

    def __init__(self, *, url: str, region: str, service: str, headers: Mapping[str, str]) -> None:
        auth = SigV4Auth(ReadOnlyCredentials("", "", None), service, region)  # not used to sign
        probe = AWSRequest(method="POST", url=url, data=b"", headers=dict(headers))
        signed = auth.headers_to_sign(probe)  # botocore's choice: Host in, User-Agent out
        self._path = auth.canonical_request(probe).split("\n")[1]
        self.host = signed["host"]
        """The ``Host`` header as signed: the one to send."""
        self._headers = dict(headers)
        self._fixed = {name: _trimmed(signed[name]) for name in set(signed)}
        self._region = region
        self._service = service
        self._key: tuple[str, str, bytes] = ("", "", b"")  # (secret, day, signing key), swapped whole

    def sign(self, body: bytes, credentials: Credentials, now: datetime | None = None) -> dict[str, str]:
        """The headers to send with ``body``: the given ones, the date, the session token and
        the ``Authorization`` header. ``Host`` is signed but not among them, as in botocore's
        requests: send ``host`` with them."""
        stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
        day = stamp[:8]
        values = {**self._fixed, "x-amz-date": stamp}
        if credentials.token:
            values["x-amz-security-token"] = _trimmed(credentials.token)
        names = sorted(values)
        signed_names = ";".join(names)
        canonical = "\n".join(
            [
                "POST",
                self._path,
                "",
                *[f"{name}:{values[name]}" for name in names],
                "",
                signed_names,
                sha256(body).hexdigest(),
            ]
        )
        scope = f"{day}/{self._region}/{self._service}/aws4_request"
        to_sign = f"{ALGORITHM}\n{stamp}\n{scope}\n{sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(self._signing_key(credentials.secret_key, day), to_sign.encode(), sha256)
        headers = {**self._headers, "X-Amz-Date": stamp}
        if credentials.token:
            headers["X-Amz-Security-Token"] = credentials.token
        headers["Authorization"] = (
            f"{ALGORITHM} Credential={credentials.access_key}/{scope}, "
            f"SignedHeaders={signed_names}, Signature={signature.hexdigest()}"
        )
        return headers

    def _signing_key(self, secret: str, day: str) -> bytes:
        kept_secret, kept_day, key = self._key
        if kept_secret != secret or kept_day != day:
            key = f"AWS4{secret}".encode()
            for part in (day, self._region, self._service, "aws4_request"):
                key = hmac.digest(key, part.encode(), "sha256")
            self._key = (secret, day, key)
        return key


def _trimmed(value: str) -> str:
    """A header value as SigV4 signs it: outer space dropped, inner runs of space made one."""
    return " ".join(value.split())
