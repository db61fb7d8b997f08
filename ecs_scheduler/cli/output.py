"""Rendering for people (tables) and for scripts (``--output json|yaml``)."""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Sequence
from typing import Any

import typer
import yaml
from rich.console import Console
from rich.table import Table


class Format(enum.StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"


def dump(data: Any, fmt: Format) -> str:
    if fmt is Format.yaml:
        return str(yaml.safe_dump(data, sort_keys=False, allow_unicode=True)).rstrip("\n")
    return json.dumps(data, indent=2, ensure_ascii=False)


def emit(data: Any, fmt: Format, table: Callable[[Any], Table | str]) -> None:
    """JSON/YAML print the API's data as is; tables are for reading only."""
    if fmt is Format.table:
        rendered = table(data)
        if isinstance(rendered, str):
            typer.echo(rendered)
        else:
            Console(soft_wrap=True).print(rendered)
    else:
        typer.echo(dump(data, fmt))


def make_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for header in headers:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    return table


def short(value: Any) -> str:
    """A compact one-line form of a field value for tables."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)
