"""The README's configuration table and commands must match the code (fails on drift)."""

from __future__ import annotations

import re

from pydantic import BaseModel

from common.config import Settings
from tests.servers import ROOT

README = (ROOT / "README.md").read_text()


def setting_variables(model: type[BaseModel], prefix: str = "") -> list[str]:
    names: list[str] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names += setting_variables(annotation, f"{prefix}{name.upper()}__")
        else:
            names.append(f"{prefix}{name.upper()}")
    return names


def documented_variables() -> set[str]:
    return set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", README, flags=re.MULTILINE))


def test_every_setting_is_documented() -> None:
    missing = set(setting_variables(Settings)) - documented_variables()
    assert not missing, f"README configuration table lacks {sorted(missing)}"


def test_every_documented_variable_exists() -> None:
    known = set(setting_variables(Settings)) | {"ECSS_CONFIG_DIR"}
    assert documented_variables() - known == set()


def test_defaults_in_table_match_settings() -> None:
    defaults = Settings.model_construct()
    for variable in setting_variables(Settings):
        row = re.search(rf"^\| `{variable}` \| ([^|]+) \|", README, flags=re.MULTILINE)
        assert row, variable
        shown = row.group(1).strip().strip("`")
        value: object = defaults
        for part in variable.lower().split("__"):
            value = getattr(value, part)
        if value is None:
            assert shown == "—", variable
        elif isinstance(value, bool):
            assert shown == str(value).lower(), variable
        elif isinstance(value, float) and value.is_integer():
            assert shown == str(int(value)), variable
        elif isinstance(value, list | dict):
            assert shown.replace(" ", "") == str(value).replace("'", '"').replace(" ", ""), variable
        else:
            assert shown == str(value), variable


def test_readme_shows_the_two_commands() -> None:
    assert "make run" in README and "make test" in README
