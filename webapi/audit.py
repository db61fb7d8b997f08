"""The audit log: one line per write and per denied request, on logger ``ecs_scheduler.audit``.

Who (principal name), what (the endpoint's name), which job, the outcome and the status, as a
%-style message and the same fields in ``extra`` (``audit_*``) for structured log handlers.
Never the token, a request body or an environment value.
"""

from __future__ import annotations

import logging

from fastapi import Request

logger = logging.getLogger("ecs_scheduler.audit")


def record(request: Request, *, outcome: str, status: int, job_id: str | None = None) -> None:
    if not logger.isEnabledFor(logging.INFO):  # nothing to build: every write comes here
        return
    principal = getattr(request.state, "principal", None) or "-"
    endpoint = request.scope.get("endpoint")
    action = getattr(endpoint, "__name__", None) or f"{request.method} {request.scope['path']}"
    job = job_id or request.path_params.get("job_id") or "-"
    logger.info(
        "principal=%s action=%s job=%s outcome=%s status=%d",
        principal,
        action,
        job,
        outcome,
        status,
        extra={
            "audit_principal": principal,
            "audit_action": action,
            "audit_job_id": job,
            "audit_outcome": outcome,
            "audit_status": status,
        },
    )
