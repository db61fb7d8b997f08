"""The practical ceiling for this stack: a bare FastAPI endpoint returning a fixed job JSON
from a dict, served by uvicorn with one worker the same way webapi is."""

from __future__ import annotations

import sys
from typing import Any

import uvicorn
from fastapi import FastAPI

JOB: dict[str, Any] = {
    "id": "job00001",
    "link": {"href": "/jobs/job00001", "rel": "item", "title": "Job for job00001"},
    "taskDefinition": "bench-task",
    "schedule": "0 0 0",
    "taskCount": 1,
}

app = FastAPI()


@app.get("/jobs/{job_id}")
async def get_job(job_id: str) -> dict[str, Any]:
    return JOB


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
