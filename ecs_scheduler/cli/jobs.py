"""``ecss jobs ...``: one command per API operation on jobs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ecs_scheduler.cli.client import ApiError
from ecs_scheduler.cli.context import OutputOption, fail, target
from ecs_scheduler.cli.documents import read_documents
from ecs_scheduler.cli.output import Format, emit, make_table, short

app = typer.Typer(help="List, inspect, change and run jobs.", no_args_is_help=True)

JobId = Annotated[str, typer.Argument(help="the job's id", show_default=False)]
FileOption = Annotated[
    Path | None,
    typer.Option("--file", "-f", help="a job document (YAML or JSON; - for stdin)", show_default=False),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="FIELD=VALUE, VALUE read as JSON when it parses (repeatable)", show_default=False
    ),
]
RunCount = Annotated[int, typer.Option(min=1, max=1000, help="runs to show, newest first")]
FireCount = Annotated[int, typer.Option(min=1, max=100, help="how many fire times")]


def _show(
    ctx: typer.Context, path: str, output: Format, table: Callable[[Any], Table | str], **params: Any
) -> None:
    """GET ``path`` and print it: as is for JSON/YAML, through ``table`` for reading."""
    with target(ctx).api() as api:
        data = api.get(path, **params)
    emit(data, output, table)


def _change(
    ctx: typer.Context, method: str, path: str, output: Format, done: str, body: dict[str, Any] | None = None
) -> None:
    """Send a write and print the API's reply (for reading: ``done``, e.g. "created job {id}",
    formatted with the reply's fields)."""
    with target(ctx).api() as api:
        data = api.request(method, path, json=body)
    emit(data, output, lambda d: done.format(**d))


def _status(job: dict[str, Any]) -> str:
    if not job.get("lastRun"):
        return ""
    failures = job.get("lastRunFailures") or []
    tasks = job.get("lastRunTasks") or []
    if failures and tasks:
        outcome = "partial"
    elif failures:
        outcome = "failed"
    else:
        outcome = "ok"
    return f"{outcome} {job['lastRun']}"


def _jobs_table(data: dict[str, Any]) -> Table:
    rows = [
        (
            job["id"],
            job.get("taskDefinition"),
            job.get("schedule"),
            job.get("timezone", "UTC"),
            short(job.get("suspended", False)),
            _status(job),
            job.get("estimatedNextRun"),
        )
        for job in data["jobs"]
    ]
    headers = ("ID", "TASK DEFINITION", "SCHEDULE", "TIMEZONE", "SUSPENDED", "LAST RUN", "NEXT RUN")
    return make_table(headers, rows)


def _fields_table(data: dict[str, Any]) -> Table:
    return make_table(
        ("FIELD", "VALUE"), [(key, short(value)) for key, value in data.items() if key != "link"]
    )


@app.command("list")
def list_jobs(
    ctx: typer.Context,
    output: OutputOption = Format.table,
    skip: Annotated[int, typer.Option(min=0, help="jobs to skip")] = 0,
    count: Annotated[int, typer.Option(min=1, max=1000, help="jobs per page")] = 100,
    all_pages: Annotated[bool, typer.Option("--all", help="every job, following the pages")] = False,
) -> None:
    """List jobs, ordered by id."""
    with target(ctx).api() as api:
        data = {"jobs": list(api.iter_jobs())} if all_pages else api.get("/jobs", skip=skip, count=count)
    emit(data, output, _jobs_table)


@app.command("get")
def get_job(ctx: typer.Context, job_id: JobId, output: OutputOption = Format.table) -> None:
    """Show every field of one job."""
    _show(ctx, f"/jobs/{job_id}", output, _fields_table)


@app.command("create")
def create_job(
    ctx: typer.Context,
    file: FileOption = None,
    task_definition: Annotated[str | None, typer.Option(help="ECS task definition family")] = None,
    schedule: Annotated[str | None, typer.Option(help="8-field schedule, e.g. '25 */5'")] = None,
    job_id: Annotated[str | None, typer.Option("--id", help="defaults to the task definition")] = None,
    timezone: Annotated[str | None, typer.Option(help="IANA timezone, e.g. Europe/Paris")] = None,
    task_count: Annotated[int | None, typer.Option(help="tasks per fire (1..50)")] = None,
    sets: SetOption = None,
    output: OutputOption = Format.table,
) -> None:
    """Create a job from options and/or a job document."""
    body = _body(file, sets)
    given = {
        "taskDefinition": task_definition,
        "schedule": schedule,
        "id": job_id,
        "timezone": timezone,
        "taskCount": task_count,
    }
    body.update({key: value for key, value in given.items() if value is not None})
    _change(ctx, "POST", "/jobs", output, "created job {id}", body)


@app.command("update")
def update_job(
    ctx: typer.Context,
    job_id: JobId,
    file: FileOption = None,
    schedule: Annotated[str | None, typer.Option(help="new schedule")] = None,
    timezone: Annotated[str | None, typer.Option(help="new IANA timezone")] = None,
    task_count: Annotated[int | None, typer.Option(help="tasks per fire (1..50)")] = None,
    sets: SetOption = None,
    clear: Annotated[
        list[str] | None, typer.Option(help="optional FIELD to clear (repeatable)", show_default=False)
    ] = None,
    output: OutputOption = Format.table,
) -> None:
    """Change the given fields of a job; the others stay as they are."""
    body = _body(file, sets)
    given = {"schedule": schedule, "timezone": timezone, "taskCount": task_count}
    body.update({key: value for key, value in given.items() if value is not None})
    body.update({field: None for field in clear or []})
    if not body:
        fail("nothing to change: give options, --set, --clear or --file")
    _change(ctx, "PUT", f"/jobs/{job_id}", output, "updated job {id}", body)


@app.command("delete")
def delete_job(
    ctx: typer.Context,
    job_id: JobId,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
    output: OutputOption = Format.table,
) -> None:
    """Delete a job (asks first unless --yes)."""
    if not yes:
        typer.confirm(f"Delete job {job_id}?", abort=True)
    _change(ctx, "DELETE", f"/jobs/{job_id}", output, "deleted job {id}")


@app.command("suspend")
def suspend_job(ctx: typer.Context, job_id: JobId, output: OutputOption = Format.table) -> None:
    """Stop a job firing until it is resumed."""
    _change(ctx, "PUT", f"/jobs/{job_id}", output, "suspended job {id}", {"suspended": True})


@app.command("resume")
def resume_job(ctx: typer.Context, job_id: JobId, output: OutputOption = Format.table) -> None:
    """Let a suspended job fire again."""
    _change(ctx, "PUT", f"/jobs/{job_id}", output, "resumed job {id}", {"suspended": False})


@app.command("run")
def run_job(
    ctx: typer.Context,
    job_id: JobId,
    task_count: Annotated[int | None, typer.Option(help="tasks for this run (default: the job's)")] = None,
    output: OutputOption = Format.table,
) -> None:
    """Run a job now, outside its schedule (POST /jobs/{id}/runs)."""
    body = {} if task_count is None else {"taskCount": task_count}
    with target(ctx).api() as api:
        try:
            data = api.request("POST", f"/jobs/{job_id}/runs", json=body)
        except ApiError as exc:
            if exc.status == 405 or (exc.status == 404 and not exc.message.startswith("Job ")):
                exc.message = (
                    f"this server cannot run jobs on demand (no POST /jobs/{{id}}/runs): {exc.message}"
                )
            raise
    emit(data, output, lambda d: f"started run {d.get('id', '')} of job {job_id}")


@app.command("runs")
def list_runs(
    ctx: typer.Context, job_id: JobId, count: RunCount = 10, output: OutputOption = Format.table
) -> None:
    """A job's run history, newest first, with each run's tasks and failures."""
    _show(ctx, f"/jobs/{job_id}/runs", output, _runs_table, count=count)


def _runs_table(data: dict[str, Any]) -> Table:
    rows = []
    for run in data["runs"]:
        failures = "; ".join(
            " ".join(part for part in (f.get("reason"), f.get("detail"), f.get("arn")) if part)
            for f in run.get("failures", [])
        )
        rows.append(
            (
                run.get("scheduledFor"),
                run.get("status"),
                run.get("expected"),
                run.get("started"),
                " ".join(task.get("taskId", "") for task in run.get("tasks", [])),
                failures or run.get("error"),
            )
        )
    return make_table(("SCHEDULED FOR", "STATUS", "EXPECTED", "STARTED", "TASKS", "FAILURES"), rows)


@app.command("upcoming")
def upcoming(
    ctx: typer.Context, job_id: JobId, count: FireCount = 10, output: OutputOption = Format.table
) -> None:
    """A job's next fire times (none while suspended)."""
    _show(ctx, f"/jobs/{job_id}/upcoming", output, fires_table, count=count)


def fires_table(data: dict[str, Any]) -> str:
    head = f"{data['schedule']} ({data['description']}, {data['timezone']})"
    if data.get("suspended"):
        return f"{head}\nsuspended: no upcoming fires"
    return "\n".join([head, *data["fires"]]) if data["fires"] else f"{head}\nno upcoming fires"


def _body(file: Path | None, sets: list[str] | None) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if file is not None:
        documents = read_documents(file)
        if len(documents.jobs) != 1:
            fail(f"{file}: expected one job document, found {len(documents.jobs)}")
        body.update(documents.jobs[0])
    for item in sets or []:
        field, sep, raw = item.partition("=")
        if not sep or not field:
            fail(f"--set {item!r}: expected FIELD=VALUE")
        try:
            body[field] = json.loads(raw)
        except ValueError:
            body[field] = raw
    return body
