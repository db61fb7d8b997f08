"""``ecss``, the command-line client of the REST API (installed as a console script)."""

from __future__ import annotations

from ecs_scheduler.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    app()
