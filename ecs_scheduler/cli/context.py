"""What every command shares: the API client built from ``--url``/``--token`` and one way to fail."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, NoReturn

import typer

from ecs_scheduler.cli.client import Api, ApiError
from ecs_scheduler.cli.output import Format

EXIT_API = 1  # the API refused the request; its message is printed
EXIT_USAGE = 2  # bad command line or input file (Typer uses 2 for usage errors too)
EXIT_UNREACHABLE = 3  # no answer from the API

OutputOption = Annotated[
    Format, typer.Option("--output", "-o", help="table for people; json or yaml for scripts")
]


@dataclass
class Target:
    url: str
    token: str | None

    @contextlib.contextmanager
    def api(self) -> Iterator[Api]:
        """A client for one command; API errors end the command with their message."""
        api = Api(self.url, token=self.token)
        try:
            yield api
        except ApiError as exc:
            fail_api(exc)
        finally:
            api.close()


def target(ctx: typer.Context) -> Target:
    found = ctx.find_object(Target)
    assert found is not None, "the root callback sets the target"
    return found


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def fail_api(exc: ApiError) -> NoReturn:
    if exc.status == 0:
        fail(exc.message, EXIT_UNREACHABLE)
    lines = [f"error: {exc.message} (HTTP {exc.status})"]
    lines += [f"  {field}: {reason}" for field, reason in exc.errors.items()]
    typer.echo("\n".join(lines), err=True)
    raise typer.Exit(EXIT_API)
