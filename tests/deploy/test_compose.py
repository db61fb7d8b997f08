"""docker-compose.yml against the project: it builds our Dockerfiles, every app service is a
valid configuration that points at services of the same file, and start-up order can be met.
``docker compose config`` runs only where the CLI and its plugin exist."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from urllib.parse import urlparse

import pytest
from packaging.requirements import Requirement

from tests.deploy.files import (
    COMPONENTS,
    COMPOSE_FILE,
    PYTHON_NAMES,
    built_services,
    container_env,
    container_ports,
    dockerfile,
    final_stage,
    is_known_env,
    pyproject,
    resolve_settings,
    service_dockerfile,
    service_env,
    services,
)
from tests.servers import ROOT


def test_compose_builds_our_dockerfiles_with_known_settings() -> None:
    built = built_services()
    for component in COMPONENTS:
        assert service_dockerfile(built[component]) == dockerfile(component)
    for name, service in built.items():
        assert service_dockerfile(service).is_file(), f"{name}: no {service_dockerfile(service)}"
        unknown = sorted(k for k in service_env(service) if not is_known_env(k))
        assert not unknown, f"{name}: not a Settings field nor a standard variable: {unknown}"


@pytest.mark.parametrize("component", COMPONENTS)
def test_app_services_resolve_to_settings_pointing_into_the_file(
    component: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = container_env(services()[component])
    settings = resolve_settings(env, monkeypatch)
    assert settings.component_name == component
    assert (ROOT / "config" / f"config_{settings.run_env}.yaml").is_file()
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
    exposed = [int(p.split("/")[0]) for e in final_stage("webapi").all("EXPOSE") for p in e.value.split()]
    assert container_ports(service) == exposed == [settings.webapi.port]


def test_elasticsearch_server_matches_the_client_major_version() -> None:
    """elasticsearch-py N sends ``compatible-with=N``; a server of another major rejects it."""
    (client,) = map(Requirement, pyproject()["project"]["optional-dependencies"]["elasticsearch"])
    majors = {s.version.split(".")[0] for s in client.specifier if s.operator == ">="}
    images = [s["image"] for s in services().values() if "elasticsearch/elasticsearch:" in s.get("image", "")]
    assert majors and images
    for image in images:
        tag = image.split("@")[0].rsplit(":", 1)[1]  # the tag, before the pinned digest
        assert tag.split(".")[0] in majors, image


def test_depends_on_conditions_can_be_met() -> None:
    every = services()
    for name, service in every.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: use depends_on with conditions"
        for target, spec in depends.items():
            other = every[target]
            condition = spec.get("condition")
            if condition == "service_healthy":
                has_image_check = "build" in other and final_stage(
                    service_dockerfile(other).name.removeprefix("Dockerfile.")
                ).all("HEALTHCHECK")
                assert "healthcheck" in other or has_image_check, f"{target} has no healthcheck"
            elif condition == "service_completed_successfully":
                assert other.get("restart", "no") == "no", f"{target} must be one-shot"
            else:
                assert condition == "service_started", f"{name} -> {target}: condition {condition!r}"
    for component in COMPONENTS:
        assert every[component]["depends_on"]["bootstrap"]["condition"] == "service_completed_successfully"


def test_bind_mounts_exist() -> None:
    for name, service in services().items():
        for volume in service.get("volumes", []):
            source = volume["source"] if isinstance(volume, dict) else str(volume).split(":")[0]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name}: bind mount {source} does not exist"


def test_bootstrap_seeds_what_webapi_and_scheduld_use() -> None:
    """Same queue, cluster and AWS values as the apps, so all agree on what was seeded."""
    bootstrap = container_env(services()["bootstrap"])
    for component in COMPONENTS:
        app = container_env(services()[component])
        for name in {*bootstrap, *app}:
            if name.startswith(("SQS__", "ECS__", "AWS_")) or name == "RUN_ENV":
                assert bootstrap.get(name) == app.get(name), f"{name} differs: bootstrap vs {component}"


@pytest.mark.parametrize(("service", "subcommand"), [("bootstrap", "seed"), ("task-reaper", "reaper")])
def test_emulator_helpers_run_a_command_of_the_local_launcher(service: str, subcommand: str) -> None:
    from ecs_scheduler.local.__main__ import COMMANDS

    spec = services()[service]
    entrypoint = spec["entrypoint"]
    command = entrypoint if isinstance(entrypoint, list) else shlex.split(entrypoint)
    assert command[0] in PYTHON_NAMES and command[1:3] == ["-m", "ecs_scheduler.local"]
    assert command[3] == subcommand and command[3] in COMMANDS
    assert spec["build"]["dockerfile"] == "Dockerfile.scheduld"  # its image has the package


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
