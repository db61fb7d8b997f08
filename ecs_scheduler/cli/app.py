"""``ecss``: the ECS Scheduler command-line client. It speaks only HTTP to the REST API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ecs_scheduler.cli import jobs
from ecs_scheduler.cli.client import Api, ApiError
from ecs_scheduler.cli.context import EXIT_API, OutputOption, Target, fail, fail_api, target
from ecs_scheduler.cli.documents import MANAGED_BY, owner_of, read_documents, user_fields
from ecs_scheduler.cli.output import Format, dump, emit, make_table
from ecs_scheduler.cli.plan import Change, PlanError, describe, desired_jobs, make_plan

DEFAULT_URL = "http://127.0.0.1:5000"

app = typer.Typer(
    name="ecss",
    help="Manage ECS Scheduler jobs over its REST API: list, inspect, change, run, and apply job files.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(jobs.app, name="jobs")


@app.callback()
def root(
    ctx: typer.Context,
    url: Annotated[str, typer.Option(envvar="ECSS_URL", help="the API's base URL")] = DEFAULT_URL,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="ECSS_TOKEN", help="API token, sent as a bearer (prefer ECSS_TOKEN)", show_default=False
        ),
    ] = None,
) -> None:
    ctx.obj = Target(url=url, token=token or None)


@app.command()
def whoami(ctx: typer.Context, output: OutputOption = Format.table) -> None:
    """Who the API takes you for: name, roles, auth mode (GET /me)."""
    with target(ctx).api() as api:
        data = api.get("/me")
    emit(data, output, lambda d: make_table(("FIELD", "VALUE"), [(k, v) for k, v in d.items()]))


@app.command()
def preview(
    ctx: typer.Context,
    schedule: Annotated[str, typer.Argument(help="8-field schedule, e.g. '25 */5'")],
    timezone: Annotated[str | None, typer.Option(help="IANA timezone; UTC if absent")] = None,
    count: Annotated[int, typer.Option(min=1, max=100, help="how many fire times")] = 10,
    output: OutputOption = Format.table,
) -> None:
    """The next fire times of a schedule, before saving it in a job."""
    params: dict[str, Any] = {"schedule": schedule, "count": count}
    if timezone:
        params["timezone"] = timezone
    with target(ctx).api() as api:
        data = api.get("/schedules/preview", **params)
    emit(data, output, jobs.fires_table)


@app.command()
def export(
    ctx: typer.Context,
    managed_by: Annotated[
        str | None,
        typer.Option("--managed-by", help="only jobs tagged managedBy=VALUE, written as a managed file"),
    ] = None,
    output: Annotated[Format, typer.Option("--output", "-o", help="yaml or json")] = Format.yaml,
) -> None:
    """Write today's jobs as a job file that `ecss apply` accepts."""
    if output is Format.table:
        fail("export writes yaml or json")
    with target(ctx).api() as api:
        settable = api.settable_fields()
        found = [user_fields(job, settable) for job in api.iter_jobs()]
    if managed_by is not None:
        found = [job for job in found if owner_of(job) == managed_by]
        typer.echo(dump({MANAGED_BY: managed_by, "jobs": found}, output))
    else:
        typer.echo(dump(found, output))


@app.command("apply")
def apply_file(
    ctx: typer.Context,
    file: Annotated[Path, typer.Option("--file", "-f", help="job file (YAML or JSON; - for stdin)")],
    prune: Annotated[
        bool, typer.Option(help="delete jobs not in the file that carry its managedBy tag")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the changes, make none")] = False,
) -> None:
    """Make the server's jobs match a job file: create, update changed fields, and with --prune delete."""
    documents = read_documents(file)
    if prune and documents.managed_by is None:
        fail(f"--prune needs the file to say whose jobs it holds: add a top-level {MANAGED_BY}")
    try:
        desired = desired_jobs(documents)
    except PlanError as exc:
        fail(f"{documents.source}: {exc}")
    tgt = target(ctx)
    with tgt.api() as api:
        current = {job["id"]: job for job in api.iter_jobs()}
        owner = documents.managed_by if prune else None
        plan = make_plan(desired, current, prune_owner=owner, settable=api.settable_fields())
        for change in plan.changes:
            typer.echo("\n".join(describe(change)))
        summary = (
            f"{plan.count('create')} to create, {plan.count('update')} to update, "
            f"{plan.count('delete')} to delete, {len(plan.unchanged)} unchanged"
        )
        typer.echo(("Plan (dry run): " if dry_run else "Plan: ") + summary)
        if dry_run or not plan.changes:
            return
        failed = [change for change in plan.changes if not _apply(api, change)]
    if failed:
        fail(
            f"{len(failed)} of {len(plan.changes)} changes failed: {', '.join(c.job_id for c in failed)}",
            EXIT_API,
        )
    typer.echo(f"Applied: {summary}")


def _apply(api: Api, change: Change) -> bool:
    """One change; its failure is reported with the API's message and the others still go ahead."""
    try:
        if change.kind == "create":
            api.request("POST", "/jobs", json=change.body)
        elif change.kind == "update":
            api.request("PUT", f"/jobs/{change.job_id}", json=change.body)
        else:
            api.request("DELETE", f"/jobs/{change.job_id}")
    except ApiError as exc:
        if exc.status == 0:
            fail_api(exc)
        details = "".join(f"\n  {field}: {reason}" for field, reason in exc.errors.items())
        typer.echo(
            f"error: {change.kind} {change.job_id}: {exc.message} (HTTP {exc.status}){details}", err=True
        )
        return False
    typer.echo(f"{change.kind}d {change.job_id}")
    return True
