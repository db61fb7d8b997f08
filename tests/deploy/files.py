"""The deployment files as data, for tests/deploy/: Dockerfiles through dockerfile-parse,
docker-compose.yml through PyYAML, .dockerignore through pathspec, and the environment each
container gets fed through the real ``Settings``. No Docker engine is needed."""

from __future__ import annotations

import io
import os
import shlex
import tomllib
import typing
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pathspec
import pytest
import yaml
from dockerfile_parse import DockerfileParser
from pydantic import BaseModel

from common.config import CONFIG_DIR_ENV, Settings, load_settings
from tests.servers import ROOT

COMPOSE_FILE = ROOT / "docker-compose.yml"
COMPONENTS = ("webapi", "scheduld")
STANDARD_ENV_PREFIXES = ("AWS_", "PYTHON", "PIP_")
STANDARD_ENV_NAMES = {"PATH", "HOME", "TZ", "LANG", "LC_ALL", CONFIG_DIR_ENV}
PYTHON_NAMES = {"python", "python3", "/opt/venv/bin/python", "/usr/local/bin/python"}


# --- Dockerfiles ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    value: str
    line: int


@dataclass(frozen=True)
class Stage:
    base: str
    name: str | None
    instructions: tuple[Instruction, ...]

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def runs(self) -> list[list[str]]:
        """Each RUN as its shell commands (split on ``&&``), each command as words."""
        commands: list[list[str]] = []
        for run in self.all("RUN"):
            for part in run.value.split("&&"):
                commands.append(shlex.split(part))
        return commands


@cache
def parser(component: str) -> DockerfileParser:
    return DockerfileParser(fileobj=io.BytesIO(dockerfile(component).read_bytes()), env_replace=True)


def dockerfile(component: str) -> Path:
    return ROOT / f"Dockerfile.{component}"


@cache
def stages(component: str) -> tuple[Stage, ...]:
    found: list[Stage] = []
    for item in parser(component).structure:
        keyword, value = item["instruction"], item["value"]
        if keyword == "FROM":
            words = [w for w in value.split() if not w.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            found.append(Stage(words[0], name, ()))
        elif keyword != "COMMENT":
            last = found[-1]
            instruction = Instruction(keyword, value, item["startline"] + 1)
            found[-1] = Stage(last.base, last.name, (*last.instructions, instruction))
    return tuple(found)


def final_stage(component: str) -> Stage:
    return stages(component)[-1]


def image_env(component: str) -> dict[str, str]:
    """The final stage's ENV, as the container starts with it."""
    return dict(parser(component).envs)


def copy_parts(instruction: Instruction) -> tuple[dict[str, str], list[str], str]:
    """(flags, sources, destination) of a COPY/ADD instruction."""
    words = shlex.split(instruction.value)
    flags = dict(w[2:].partition("=")[::2] for w in words if w.startswith("--"))
    paths = [w for w in words if not w.startswith("--")]
    return flags, paths[:-1], paths[-1]


def exec_form(value: str) -> list[str]:
    """A JSON array as such; shell form becomes what Docker runs: ``/bin/sh -c <value>``."""
    parsed = yaml.safe_load(value) if value.startswith("[") else None
    return parsed if isinstance(parsed, list) else ["/bin/sh", "-c", value]


def image_command(stage: Stage) -> list[str]:
    """ENTRYPOINT + CMD as the container runs them (the last of each counts)."""
    entrypoints, cmds = stage.all("ENTRYPOINT"), stage.all("CMD")
    command = exec_form(entrypoints[-1].value) if entrypoints else []
    if cmds:
        command += exec_form(cmds[-1].value)
    return command


# --- project, compose, .dockerignore --------------------------------------------------------


@cache
def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


@cache
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(document, dict) and isinstance(document.get("services"), dict)
    return document


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def built_services() -> dict[str, dict[str, Any]]:
    """Services that run one of our images (and so read our settings)."""
    return {name: svc for name, svc in services().items() if "build" in svc}


def service_dockerfile(service: dict[str, Any]) -> Path:
    build = service["build"]
    if isinstance(build, str):
        return ROOT / build / "Dockerfile"
    return ROOT / build.get("context", ".") / build.get("dockerfile", "Dockerfile")


def service_env(service: dict[str, Any]) -> dict[str, str]:
    """Compose environment in either syntax; YAML booleans and numbers as compose passes them."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) if "=" in item else (item, None) for item in raw)
    return {
        str(key): str(value).lower() if isinstance(value, bool) else str(value)
        for key, value in raw.items()
        if value is not None  # None: passed through from the host, not fixed by the file
    }


def container_env(service: dict[str, Any]) -> dict[str, str]:
    """What the process sees: the image's ENV, overridden by the compose service's."""
    component = service_dockerfile(service).name.removeprefix("Dockerfile.")
    return image_env(component) | service_env(service)


def container_ports(service: dict[str, Any]) -> list[int]:
    """Container side of each ``ports`` entry (short or long syntax)."""
    return [
        int(entry["target"]) if isinstance(entry, dict) else int(str(entry).split("/")[0].rsplit(":", 1)[-1])
        for entry in service.get("ports", [])
    ]


@cache
def dockerignore() -> pathspec.GitIgnoreSpec:
    """Docker's matching is Go's filepath.Match plus ``**``; git's rules agree on every pattern
    this project uses (names, ``**/x``, globs)."""
    return pathspec.GitIgnoreSpec.from_lines((ROOT / ".dockerignore").read_text().splitlines())


def is_ignored(relative: str) -> bool:
    return dockerignore().match_file(relative.strip("/"))


# --- settings -------------------------------------------------------------------------------


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _is_mapping(annotation: Any) -> bool:
    return typing.get_origin(annotation) is dict or any(_is_mapping(a) for a in typing.get_args(annotation))


@cache
def settings_paths() -> tuple[frozenset[str], frozenset[str]]:
    """(every field path, dict-valued paths that take any sub-key), joined with ``__``, lowercase."""
    exact: set[str] = set()
    open_ended: set[str] = set()

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, info in model.model_fields.items():
            path = f"{prefix}{name}".lower()
            exact.add(path)
            if _is_mapping(info.annotation):
                open_ended.add(path)
            for sub in _models_in(info.annotation):
                walk(sub, f"{path}__")

    walk(Settings, "")
    return frozenset(exact), frozenset(open_ended)


def is_setting(name: str) -> bool:
    exact, open_ended = settings_paths()
    lowered = name.lower()
    return lowered in exact or any(lowered.startswith(f"{p}__") for p in open_ended)


def is_known_env(name: str) -> bool:
    return name.startswith(STANDARD_ENV_PREFIXES) or name in STANDARD_ENV_NAMES or is_setting(name)


def resolve_settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings exactly as the container would load them, from this repo's config/ files."""
    top_level = {name.lower() for name in Settings.model_fields}
    for key in list(os.environ):
        if key.lower().split("__")[0] in top_level or key == CONFIG_DIR_ENV:
            monkeypatch.delenv(key)
    for key, value in env.items():
        if is_setting(key):
            monkeypatch.setenv(key, value)
    monkeypatch.setenv(CONFIG_DIR_ENV, str(ROOT / "config"))  # the image copies config/ there
    return load_settings()
