"""Dockerfile.webapi and Dockerfile.scheduld against the project: what they copy exists and
reaches the build, what they install is the locked runtime set, what they run is ours, and the
environment they set is a valid configuration."""

from __future__ import annotations

import importlib
import importlib.util
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from common.config import CONFIG_DIR_ENV
from tests.deploy.files import (
    COMPONENTS,
    PYTHON_NAMES,
    copy_parts,
    exec_form,
    final_stage,
    image_command,
    image_env,
    is_ignored,
    is_known_env,
    pyproject,
    resolve_settings,
    stages,
)
from tests.servers import ROOT, free_port


@pytest.mark.parametrize("component", COMPONENTS)
def test_two_stages_on_one_digest_pinned_supported_python(component: str) -> None:
    """A builder keeps pip and build tools out of the runtime; one base, pinned by digest, so
    the copied venv's python resolves and a rebuild gets the same base."""
    found = stages(component)
    assert len(found) >= 2, "expected a builder stage and a runtime stage"
    (base,) = {s.base for s in found}
    assert re.fullmatch(r"python:3\.(\d+)-slim@sha256:[0-9a-f]{64}", base), base
    minimum = re.search(r">=\s*3\.(\d+)", pyproject()["project"]["requires-python"])
    assert minimum and int(base.split(":")[1].split("-")[0].split(".")[1]) >= int(minimum[1])
    runtime = found[-1]
    earlier = {s.name for s in found[:-1]}
    assert any(copy_parts(c)[0].get("from") in earlier for c in runtime.all("COPY")), "venv not copied"
    assert not [cmd for cmd in runtime.runs() if "pip" in cmd], "dependencies belong in the builder"


@pytest.mark.parametrize("component", COMPONENTS)
def test_builder_installs_the_runtime_lock_then_the_project_without_dependencies(component: str) -> None:
    pips = [cmd[cmd.index("install") + 1 :] for cmd in stages(component)[0].runs() if "install" in cmd]
    assert ["--require-hashes", "-r", "runtime.txt"] in pips, "the hashed runtime lock is not installed"
    assert ["--no-deps", "."] in pips, "the project is not installed (non-editable, no dependencies)"
    assert len(pips) == 2, f"other installs bypass the lock: {pips}"


@pytest.mark.parametrize("component", COMPONENTS)
def test_every_copied_path_exists_and_reaches_the_build_context(component: str) -> None:
    for stage in stages(component):
        for instruction in stage.all("COPY") + stage.all("ADD"):
            flags, sources, _ = copy_parts(instruction)
            if "from" in flags:
                continue
            for source in sources:
                path = ROOT / source
                assert path.exists(), f"COPY {source}: not in the repo"
                files = [path]
                if path.is_dir():
                    files = [f for f in path.rglob("*.py") if "__pycache__" not in f.parts]
                for file in files:
                    relative = file.relative_to(ROOT).as_posix()
                    assert not is_ignored(relative), f"{relative} is excluded by .dockerignore"


@pytest.mark.parametrize("component", COMPONENTS)
def test_builder_copies_everything_the_package_build_needs(component: str) -> None:
    """A package added to [tool.setuptools.packages.find] must reach the image too."""
    copied = {s.rstrip("/") for c in stages(component)[0].all("COPY") for s in copy_parts(c)[1]}
    project = pyproject()
    needed = {"pyproject.toml", project["project"]["readme"]}
    for pattern in project["tool"]["setuptools"]["packages"]["find"]["include"]:
        top = pattern.split(".")[0].rstrip("*")
        needed.update(p.name for p in ROOT.iterdir() if p.is_dir() and p.name == top)
    assert needed <= copied, f"not copied into the builder: {sorted(needed - copied)}"


@pytest.mark.parametrize("component", COMPONENTS)
def test_runs_as_the_non_root_user_it_creates(component: str) -> None:
    stage = final_stage(component)
    uid = stage.all("USER")[-1].value.split(":")[0]
    assert uid.isdigit() and uid != "0", "run as a numeric, non-root uid (Kubernetes runAsNonRoot)"
    created = [cmd for cmd in stage.runs() if cmd and cmd[0] in {"useradd", "adduser"}]
    uids = {cmd[cmd.index("--uid") + 1] for cmd in created if "--uid" in cmd}
    assert uid in uids, f"uid {uid} is not created by the image"


@pytest.mark.parametrize("component", COMPONENTS)
def test_entrypoint_is_our_console_script(component: str) -> None:
    command = image_command(final_stage(component))
    scripts: dict[str, str] = pyproject()["project"]["scripts"]
    assert command and command[0] in scripts, f"unexpected entry point {command}"
    module_name, _, attribute = scripts[command[0]].partition(":")
    assert callable(getattr(importlib.import_module(module_name), attribute))


@pytest.mark.parametrize("component", COMPONENTS)
def test_image_env_is_a_valid_configuration_of_its_component(
    component: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = image_env(component)
    unknown = sorted(k for k in env if not is_known_env(k))
    assert not unknown, f"not a Settings field nor a standard variable: {unknown}"
    assert env.get("PYTHONUNBUFFERED") == "1", "logs must not sit in a buffer"
    settings = resolve_settings(env, monkeypatch)
    assert settings.component_name == component
    assert (ROOT / "config" / f"config_{settings.run_env}.yaml").is_file()
    if component == "webapi":
        assert settings.webapi.host == "0.0.0.0", "a container must listen beyond loopback"


@pytest.mark.parametrize("component", COMPONENTS)
def test_config_is_copied_where_the_image_looks(component: str) -> None:
    """common/config.py looks beside the source tree, which a wheel install moves to site-packages."""
    stage = final_stage(component)
    targets = {
        destination.rstrip("/")
        for flags, sources, destination in map(copy_parts, stage.all("COPY"))
        if "from" not in flags and "config" in {s.rstrip("/") for s in sources}
    }
    assert image_env(component).get(CONFIG_DIR_ENV, "").rstrip("/") in targets


class _Root(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200 if self.path == "/readyz" else 404)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_webapi_exposes_its_port_and_its_healthcheck_checks_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The HEALTHCHECK command run here (python -c, as the slim image has no curl): it passes
    while something answers /readyz on the configured port and fails once nothing does."""
    stage = final_stage("webapi")
    settings = resolve_settings(image_env("webapi"), monkeypatch)
    exposed = [int(p.split("/")[0]) for e in stage.all("EXPOSE") for p in e.value.split()]
    assert exposed == [settings.webapi.port]
    command = exec_form(stage.all("HEALTHCHECK")[-1].value.partition("CMD ")[2].strip())
    assert command[0] in PYTHON_NAMES and command[1] == "-c"
    port = free_port()
    check = [sys.executable, "-c", command[2]]
    env = {"WEBAPI__PORT": str(port), "PATH": "/usr/bin:/bin"}
    server = ThreadingHTTPServer(("127.0.0.1", port), _Root)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert subprocess.run(check, env=env, timeout=30, check=False).returncode == 0
    finally:
        server.shutdown()
        server.server_close()
    assert subprocess.run(check, env=env, timeout=30, check=False, capture_output=True).returncode != 0
