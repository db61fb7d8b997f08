"""Reply shapes of the Jobs API, for the OpenAPI document (replies are built as plain dicts)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from common.models import Job, RunPublic


class JobLink(BaseModel):
    href: str
    rel: Literal["item"] = "item"
    title: str


class JobRef(BaseModel):
    """What create and update return: the id and where the job lives."""

    id: str
    link: JobLink
    warnings: list[str] | None = None
    """Accepted, but worth a look: e.g. a schedule firing more often than once a minute."""


class DeletedJob(BaseModel):
    id: str


class JobReply(Job):
    """A stored job as served: every set field plus ``id`` and ``link``."""

    link: JobLink


class JobsPage(BaseModel):
    jobs: list[JobReply]
    prev: str | None = None
    next: str | None = None


class RunsPage(BaseModel):
    runs: list[RunPublic]
    prev: str | None = None
    next: str | None = None


class RunLink(BaseModel):
    href: str
    rel: Literal["item"] = "item"
    title: str


class RunRef(BaseModel):
    """What POST /jobs/{id}/runs returns: the run's id and where to follow it."""

    id: str
    link: RunLink


class BackfillReply(BaseModel):
    requested: int
    """New runs, one per fire time in the window that had none."""
    existing: int
    """Fire times that already had a run (not repeated)."""
    first: str | None = None
    last: str | None = None
    runs: str


class ErrorReply(BaseModel):
    message: str
    errors: dict[str, str] | None = None


def job_link(job_id: str) -> dict[str, str]:
    return {"href": f"/jobs/{job_id}", "rel": "item", "title": f"Job for {job_id}"}


def job_ref(job_id: str, *, warnings: list[str] | None = None) -> dict[str, object]:
    reply: dict[str, object] = {"id": job_id, "link": job_link(job_id)}
    if warnings:
        reply["warnings"] = warnings
    return reply


def run_ref(job_id: str, run_id: str) -> dict[str, object]:
    href = f"/jobs/{job_id}/runs/{run_id}"
    return {"id": run_id, "link": {"href": href, "rel": "item", "title": f"Run {run_id}"}}


def job_reply(document: dict[str, Any]) -> dict[str, object]:
    """The served form of a job document: id and link first, then every set field."""
    job_id = document.pop("id")
    return {"id": job_id, "link": job_link(job_id), **document}


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema with every ``$ref`` replaced by its definition, for a request
    body documented through ``openapi_extra`` (no entry in the document's components)."""
    schema = model.model_json_schema(by_alias=True)
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                name = node["$ref"].rsplit("/", 1)[-1]
                return inline({**definitions[name], **{k: v for k, v in node.items() if k != "$ref"}})
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(value) for value in node]
        return node

    inlined: dict[str, Any] = inline(schema)
    return inlined
