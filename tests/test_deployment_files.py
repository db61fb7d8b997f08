"""Static checks of the container files against the project, so they fail when either drifts.

No Docker engine is needed: the Dockerfiles are parsed by hand, docker-compose.yml with PyYAML,
and the environment each container gets is fed through the real ``Settings`` to prove it is a
valid configuration. ``docker compose config`` runs only where the CLI and its plugin exist.
"""

from __future__ import annotations

import fnmatch
import importlib
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
from pydantic import BaseModel

from common.config import CONFIG_DIR_ENV, Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
COMPONENTS = ("webapi", "scheduld")
BASE_IMAGE = "python:3.11-slim"
STANDARD_ENV_PREFIXES = ("AWS_", "PYTHON", "PIP_")
STANDARD_ENV_NAMES = {"PATH", "HOME", "TZ", "LANG", "LC_ALL", CONFIG_DIR_ENV}
PYTHON_NAMES = {"python", "python3", "/opt/venv/bin/python", "/usr/local/bin/python"}


# --- Dockerfile parsing ------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    line: int


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def env(self) -> dict[str, str]:
        """ENV in order, later values winning; both ``K=V ...`` and legacy ``K V`` forms."""
        result: dict[str, str] = {}
        for instruction in self.all("ENV"):
            tokens = shlex.split(instruction.args)
            if tokens and "=" not in tokens[0]:
                result[tokens[0]] = " ".join(tokens[1:])
                continue
            for token in tokens:
                key, _, value = token.partition("=")
                result[key] = value
        return result


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Join backslash continuations; drop comments and blank lines, as BuildKit does."""
    buffer: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not buffer:
            start = number
        if stripped.endswith("\\"):
            buffer.append(stripped[:-1].strip())
            continue
        buffer.append(stripped)
        yield start, " ".join(buffer)
        buffer = []
    assert not buffer, "Dockerfile ends inside a line continuation"


@cache
def parse_dockerfile(path: Path) -> list[Stage]:
    stages: list[Stage] = []
    for number, line in _logical_lines(path.read_text()):
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        args = args.strip()
        assert "<<" not in args or keyword != "RUN", f"{path.name}:{number}: heredocs are not parsed here"
        if keyword == "FROM":
            tokens = [t for t in args.split() if not t.startswith("--")]
            name = tokens[2] if len(tokens) == 3 and tokens[1].upper() == "AS" else None
            stages.append(Stage(base=tokens[0], name=name))
            continue
        assert stages, f"{path.name}:{number}: {keyword} before FROM"
        stages[-1].instructions.append(Instruction(keyword, args, number))
    return stages


def exec_form(args: str) -> list[str]:
    """A JSON array as such; shell form becomes what Docker runs: ``/bin/sh -c <args>``."""
    if args.startswith("["):
        value = json.loads(args)
        assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
        return value
    return ["/bin/sh", "-c", args]


def copy_parts(instruction: Instruction) -> tuple[dict[str, str], list[str], str]:
    """(flags, sources, destination) of a COPY/ADD instruction."""
    flags: dict[str, str] = {}
    rest = instruction.args
    while rest.startswith("--"):
        flag, _, rest = rest.partition(" ")
        key, _, value = flag[2:].partition("=")
        flags[key] = value
        rest = rest.strip()
    paths = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
    assert len(paths) >= 2, f"line {instruction.line}: COPY needs a source and a destination"
    return flags, paths[:-1], paths[-1]


def final_stage(component: str) -> Stage:
    return parse_dockerfile(dockerfile(component))[-1]


def dockerfile(component: str) -> Path:
    return ROOT / f"Dockerfile.{component}"


def image_command(stage: Stage) -> list[str]:
    """ENTRYPOINT + CMD as the container runs them (the last of each counts)."""
    entrypoints = stage.all("ENTRYPOINT")
    cmds = stage.all("CMD")
    command = exec_form(entrypoints[-1].args) if entrypoints else []
    if cmds and (not entrypoints or entrypoints[-1].args.startswith("[")):
        command += exec_form(cmds[-1].args)
    return command


# --- project facts --------------------------------------------------------------------------------


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
    env: dict[str, str] = {}
    for key, value in raw.items():
        if value is None:
            continue  # passed through from the host: not fixed by the file
        env[str(key)] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


def container_env(service: dict[str, Any]) -> dict[str, str]:
    """What the process sees: the image's ENV, overridden by the compose service's."""
    env = parse_dockerfile(service_dockerfile(service))[-1].env()
    env.update(service_env(service))
    return env


def container_ports(service: dict[str, Any]) -> list[int]:
    """Container side of each ``ports`` entry (short or long syntax)."""
    ports: list[int] = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            ports.append(int(entry["target"]))
        else:
            ports.append(int(str(entry).split("/")[0].rsplit(":", 1)[-1]))
    return ports


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
        if key.lower().split("__")[0] in top_level or key in {"RUN_ENV", CONFIG_DIR_ENV}:
            monkeypatch.delenv(key)
    for key, value in env.items():
        if is_setting(key):
            monkeypatch.setenv(key, value)
    monkeypatch.setenv(CONFIG_DIR_ENV, str(ROOT / "config"))  # the image copies config/ there
    return load_settings()


def literal_values(annotation: Any) -> set[Any]:
    if typing.get_origin(annotation) is typing.Literal:
        return set(typing.get_args(annotation))
    return {v for arg in typing.get_args(annotation) for v in literal_values(arg)}


@cache
def dockerignore() -> list[tuple[bool, str]]:
    patterns: list[tuple[bool, str]] = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            negate = line.startswith("!")
            patterns.append((negate, line.lstrip("!").strip("/")))
    return patterns


def _ignore_match(pattern: str, path: str) -> bool:
    if pattern.startswith("**/"):
        parts = path.split("/")
        return any(fnmatch.fnmatchcase("/".join(parts[i:]), pattern[3:]) for i in range(len(parts)))
    return fnmatch.fnmatchcase(path, pattern)


def is_ignored(relative: str) -> bool:
    """Close to Docker's rules: a match on a path or any parent directory excludes it; last wins."""
    parts = relative.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for negate, pattern in dockerignore():
        if any(_ignore_match(pattern, p) for p in prefixes):
            ignored = not negate
    return ignored


# --- Dockerfiles ---------------------------------------------------------------------------------


@pytest.mark.parametrize("component", COMPONENTS)
def test_multi_stage_on_the_supported_python(component: str) -> None:
    """A builder stage keeps pip/build tools out; same base so the copied venv's python resolves."""
    stages = parse_dockerfile(dockerfile(component))
    assert len(stages) >= 2, "expected a builder stage and a runtime stage"
    assert {s.base.split("@")[0] for s in stages} == {BASE_IMAGE}
    minimum = re.search(r">=\s*3\.(\d+)", pyproject()["project"]["requires-python"])
    assert minimum and int(BASE_IMAGE.split(":")[1].split("-")[0].split(".")[1]) >= int(minimum[1])
    earlier = {s.name for s in stages[:-1] if s.name}
    froms = [copy_parts(c)[0].get("from") for c in stages[-1].all("COPY")]
    assert any(f in earlier for f in froms), "the runtime stage must copy its venv from the builder"
    runtime_runs = " ".join(r.args for r in stages[-1].all("RUN"))
    assert "pip install" not in runtime_runs, "dependencies belong in the builder stage"


@pytest.mark.parametrize("component", COMPONENTS)
def test_every_copied_path_exists_and_reaches_the_build_context(component: str) -> None:
    for stage in parse_dockerfile(dockerfile(component)):
        for instruction in stage.all("COPY") + stage.all("ADD"):
            flags, sources, _ = copy_parts(instruction)
            if "from" in flags:
                continue
            for source in sources:
                matches = list(ROOT.glob(source.rstrip("/"))) if "*" in source else [ROOT / source]
                assert matches and all(m.exists() for m in matches), f"COPY {source}: not in the repo"
                assert not is_ignored(source), f"COPY {source}: excluded by .dockerignore"
                for match in matches:
                    for file in match.rglob("*.py") if match.is_dir() else [match]:
                        rel = file.relative_to(ROOT).as_posix()
                        assert "__pycache__" in rel or not is_ignored(rel), f"{rel} excluded by .dockerignore"


@pytest.mark.parametrize("component", COMPONENTS)
def test_builder_copies_everything_the_package_build_needs(component: str) -> None:
    """A package added to [tool.setuptools.packages.find] must reach the image too."""
    builder = parse_dockerfile(dockerfile(component))[0]
    copied = {s.rstrip("/") for c in builder.all("COPY") for s in copy_parts(c)[1]}
    project = pyproject()
    needed = {"pyproject.toml", project["project"]["readme"]}
    for pattern in project["tool"]["setuptools"]["packages"]["find"]["include"]:
        top = pattern.rstrip("*").split(".")[0]
        needed.update(p.name for p in ROOT.iterdir() if p.is_dir() and fnmatch.fnmatch(p.name, top))
    assert needed <= copied, f"not copied into the builder: {sorted(needed - copied)}"


@pytest.mark.parametrize("component", COMPONENTS)
def test_no_dev_or_local_dependencies_in_the_image(component: str) -> None:
    extras = pyproject()["project"]["optional-dependencies"]
    own_name = pyproject()["project"]["name"]
    dev_packages = {
        match[0].lower()
        for requirements in extras.values()
        for requirement in requirements
        if (match := re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)) and match[0] != own_name
    }
    runs = [r.args for s in parse_dockerfile(dockerfile(component)) for r in s.all("RUN")]
    assert any(re.search(r"pip install\b.*\s\.(\s|$)", run) for run in runs), "the project is not installed"
    for run in runs:
        assert not re.search(r"\[[^\]]*\b(" + "|".join(map(re.escape, extras)) + r")\b[^\]]*\]", run), run
        assert not re.search(r"(^|\s)(-e|--editable)(\s|$)", run), "editable installs point at the builder"
        if "pip install" in run:
            words = {w.lower() for w in re.findall(r"[A-Za-z0-9][A-Za-z0-9._-]*", run)}
            assert not words & dev_packages, f"dev packages installed: {sorted(words & dev_packages)}"


@pytest.mark.parametrize("component", COMPONENTS)
def test_runs_as_a_non_root_user_it_creates(component: str) -> None:
    stage = final_stage(component)
    users = stage.all("USER")
    assert users, "no USER: the container would run as root"
    user = users[-1].args.split(":")[0]
    assert user not in {"root", "0"}
    if not user.isdigit():
        runs = " ".join(r.args for r in stage.all("RUN"))
        assert re.search(rf"\b(useradd|adduser)\b[^&;]*\b{re.escape(user)}\b", runs), (
            f"user {user} not created"
        )


@pytest.mark.parametrize("component", COMPONENTS)
def test_entrypoint_is_a_console_script_or_module_that_exists(component: str) -> None:
    command = image_command(final_stage(component))
    assert command, "no ENTRYPOINT/CMD"
    scripts: dict[str, str] = pyproject()["project"]["scripts"]
    if command[0] in scripts:
        module_name, _, attribute = scripts[command[0]].partition(":")
        assert callable(getattr(importlib.import_module(module_name), attribute))
    else:
        assert command[0] in PYTHON_NAMES and command[1] == "-m", f"unexpected entry point {command}"
        assert importlib.util.find_spec(command[2]) is not None, f"no module {command[2]}"


@pytest.mark.parametrize("component", COMPONENTS)
def test_component_name_matches_the_dockerfile(component: str) -> None:
    env = final_stage(component).env()
    assert env.get("COMPONENT_NAME") == component
    assert component in literal_values(Settings.model_fields["component_name"].annotation)
    assert env.get("PYTHONUNBUFFERED") == "1", "logs must not sit in a buffer"


@pytest.mark.parametrize("component", COMPONENTS)
def test_image_env_names_are_settings_or_standard(component: str) -> None:
    for stage in parse_dockerfile(dockerfile(component)):
        unknown = sorted(k for k in stage.env() if not is_known_env(k))
        assert not unknown, f"not a Settings field nor a standard variable: {unknown}"


@pytest.mark.parametrize("component", COMPONENTS)
def test_config_is_copied_where_the_image_says(component: str) -> None:
    """common/config.py looks beside the source tree, which a wheel install moves to site-packages."""
    stage = final_stage(component)
    config_dir = stage.env().get(CONFIG_DIR_ENV)
    assert config_dir, f"{CONFIG_DIR_ENV} must point at the copied config/"
    targets = {
        destination.rstrip("/")
        for c in stage.all("COPY")
        for flags, sources, destination in [copy_parts(c)]
        if "from" not in flags and any(s.rstrip("/") == "config" for s in sources)
    }
    assert config_dir.rstrip("/") in targets


@pytest.mark.parametrize("component", COMPONENTS)
def test_image_defaults_are_a_valid_configuration(component: str, monkeypatch: pytest.MonkeyPatch) -> None:
    env = final_stage(component).env()
    assert (ROOT / "config" / f"config_{env['RUN_ENV']}.yaml").is_file()
    settings = resolve_settings(env, monkeypatch)
    assert settings.component_name == component
    assert settings.run_env == env["RUN_ENV"]
    if component == "webapi":
        assert settings.webapi.host == "0.0.0.0", "a container must listen beyond loopback"


def test_webapi_exposes_its_port_and_has_a_python_healthcheck(monkeypatch: pytest.MonkeyPatch) -> None:
    stage = final_stage("webapi")
    port = resolve_settings(stage.env(), monkeypatch).webapi.port
    exposed = [int(p.split("/")[0]) for e in stage.all("EXPOSE") for p in e.args.split()]
    assert exposed == [port]
    checks = stage.all("HEALTHCHECK")
    assert checks, "Dockerfile.webapi needs a HEALTHCHECK"
    options, _, command_args = checks[-1].args.partition("CMD ")
    assert command_args, "HEALTHCHECK must run a command"
    command = exec_form(command_args.strip())
    assert command[0] in PYTHON_NAMES and command[1] == "-c" and "urllib" in command[2], "slim has no curl"
    compile(command[2], "<healthcheck>", "exec")
    default = re.search(r"WEBAPI__PORT['\"]\s*,\s*['\"](\d+)", command[2])
    assert "http://127.0.0.1:" in command[2]
    assert f"127.0.0.1:{port}/" in command[2] or (default and int(default[1]) == port)


# --- docker-compose.yml ------------------------------------------------------------------------


def test_compose_builds_existing_dockerfiles() -> None:
    built = built_services()
    for component in COMPONENTS:
        assert service_dockerfile(built[component]) == dockerfile(component)
    for name, service in built.items():
        assert service_dockerfile(service).is_file(), f"{name}: no {service_dockerfile(service)}"


def test_compose_env_names_are_settings_or_standard() -> None:
    for name, service in built_services().items():
        unknown = sorted(k for k in service_env(service) if not is_known_env(k))
        assert not unknown, f"{name}: not a Settings field nor a standard variable: {unknown}"


def test_run_env_values_have_a_config_file() -> None:
    values = {final_stage(c).env().get("RUN_ENV") for c in COMPONENTS}
    values |= {service_env(s).get("RUN_ENV") for s in services().values()}
    for value in values - {None}:
        assert (ROOT / "config" / f"config_{value}.yaml").is_file(), f"RUN_ENV={value} has no config file"


@pytest.mark.parametrize("component", COMPONENTS)
def test_compose_services_resolve_to_valid_settings(component: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each app service loads cleanly and points at services that exist in the same file."""
    env = container_env(services()[component])
    settings = resolve_settings(env, monkeypatch)
    assert settings.component_name == component
    names = set(services())
    for key, value in env.items():
        if key.startswith("AWS_ENDPOINT_URL"):
            assert urlparse(value).hostname in names, f"{key}={value}: no such service"
    if settings.store.backend == "elasticsearch":
        assert settings.store.elasticsearch.hosts, "no Elasticsearch hosts"
        for host in settings.store.elasticsearch.hosts:
            assert urlparse(host).hostname in names, f"Elasticsearch host {host}: no such service"


def test_webapi_ports_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    service = services()["webapi"]
    settings = resolve_settings(container_env(service), monkeypatch)
    exposed = [int(p.split("/")[0]) for e in final_stage("webapi").all("EXPOSE") for p in e.args.split()]
    assert container_ports(service) == exposed == [settings.webapi.port]
    assert settings.webapi.host == "0.0.0.0"


def test_elasticsearch_server_matches_the_client_major_version() -> None:
    """elasticsearch-py N sends ``compatible-with=N``; a server of another major rejects it."""
    requirement = next(
        r
        for r in pyproject()["project"]["optional-dependencies"]["elasticsearch"]
        if re.match(r"elasticsearch\s*[<>=!~]", r)
    )
    client_major = re.search(r">=\s*(\d+)", requirement)
    images = [s["image"] for s in services().values() if "elasticsearch/elasticsearch:" in s.get("image", "")]
    assert client_major and images
    for image in images:
        assert image.rsplit(":", 1)[1].split(".")[0] == client_major[1], image


def test_depends_on_conditions_can_be_met() -> None:
    allowed = {"service_started", "service_healthy", "service_completed_successfully"}
    all_services = services()
    for name, service in all_services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: use depends_on with conditions"
        for target, spec in depends.items():
            assert target in all_services, f"{name} depends on unknown {target}"
            condition = spec.get("condition")
            assert condition in allowed, f"{name} -> {target}: condition {condition!r}"
            other = all_services[target]
            if condition == "service_healthy":
                has_image_check = "build" in other and parse_dockerfile(service_dockerfile(other))[-1].all(
                    "HEALTHCHECK"
                )
                assert "healthcheck" in other or has_image_check, f"{target} has no healthcheck"
            if condition == "service_completed_successfully":
                assert other.get("restart", "no") == "no", f"{target} must be one-shot"
    for component in COMPONENTS:
        conditions = {t: s["condition"] for t, s in all_services[component]["depends_on"].items()}
        assert conditions.get("bootstrap") == "service_completed_successfully"


def test_bind_mounts_exist() -> None:
    for name, service in services().items():
        for volume in service.get("volumes", []):
            source = volume["source"] if isinstance(volume, dict) else str(volume).split(":")[0]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name}: bind mount {source} does not exist"


def test_bootstrap_seeds_with_the_settings_webapi_and_scheduld_get() -> None:
    """Same queue, cluster and AWS values as the apps, so all agree on what was seeded."""
    bootstrap_env = container_env(services()["bootstrap"])
    for component in COMPONENTS:
        app_env = container_env(services()[component])
        for name in {*bootstrap_env, *app_env}:
            if name.startswith(("SQS__", "ECS__", "AWS_")) or name == "RUN_ENV":
                assert bootstrap_env.get(name) == app_env.get(name), (
                    f"{name} differs: bootstrap vs {component}"
                )


def test_dockerignore_keeps_the_context_small() -> None:
    for path in (".venv", ".git", "data", "tests", "bench", ".mypy_cache", ".pytest_cache", ".ruff_cache"):
        assert is_ignored(path), f".dockerignore does not exclude {path}"
    assert is_ignored("common/__pycache__/config.cpython-311.pyc")


def test_docker_compose_config_accepts_the_file() -> None:
    """Compose's own validation; needs the CLI and its plugin, not an engine."""
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker CLI not installed: `docker compose config` not run")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30, check=False)
    if probe.returncode != 0:
        pytest.skip("docker CLI has no compose plugin: `docker compose config` not run")
    result = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE_FILE), "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("service", "subcommand"), [("bootstrap", "seed"), ("task-reaper", "reaper")])
def test_emulator_helpers_run_a_command_of_the_local_launcher(service: str, subcommand: str) -> None:
    from ecs_scheduler.local.__main__ import COMMANDS

    spec = services()[service]
    entrypoint = spec["entrypoint"]
    command = entrypoint if isinstance(entrypoint, list) else shlex.split(entrypoint)
    assert command[0] in PYTHON_NAMES and command[1:3] == ["-m", "ecs_scheduler.local"]
    assert command[3] == subcommand and command[3] in COMMANDS
    assert spec["build"]["dockerfile"] == "Dockerfile.scheduld"  # its image has the package
