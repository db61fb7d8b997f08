"""Reply shapes of the Jobs API, for the OpenAPI document (replies are built as plain dicts)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from common.models import Job, Run


class JobLink(BaseModel):
    href: str
    rel: Literal["item"] = "item"
    title: str


class JobRef(BaseModel):
    """What create and update return: the id and where the job lives."""

    id: str
    link: JobLink


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
    runs: list[Run]
    prev: str | None = None
    next: str | None = None


class ErrorReply(BaseModel):
    message: str
    errors: dict[str, str] | None = None


def job_link(job_id: str) -> dict[str, str]:
    return {"href": f"/jobs/{job_id}", "rel": "item", "title": f"Job for {job_id}"}


def job_ref(job_id: str) -> dict[str, object]:
    return {"id": job_id, "link": job_link(job_id)}


def job_reply(job: Job) -> dict[str, object]:
    """The served form of a job: id and link first, then every set field."""
    document = job.to_document()
    document.pop("id", None)
    return {"id": job.id, "link": job_link(job.id), **document}
