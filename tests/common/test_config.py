"""Settings: model defaults, RUN_ENV overlay, environment variables, clear errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.config import CONFIG_DIR_ENV, ConfigError, Settings, load_settings
from tests.servers import ROOT


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "config_local.yaml").write_text("store:\n  sqlite:\n    busy_timeout_seconds: 3\n")
    (tmp_path / "config_staging.yaml").write_text("ecs:\n  cluster: staging\n")
    monkeypatch.setenv(CONFIG_DIR_ENV, str(tmp_path))
    for key in list(os.environ):
        if key.startswith(("STORE__", "ECS__", "SQS__", "WEBAPI__", "SCHEDULER__", "RETRY__")) or key in {
            "RUN_ENV",
            "LOG_LEVEL",
            "COMPONENT_NAME",
        }:
            monkeypatch.delenv(key)
    return tmp_path


def test_model_defaults_then_run_env_overlay(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local = load_settings()  # RUN_ENV unset: the default, local
    assert (local.run_env, local.store.sqlite.busy_timeout_seconds) == ("local", 3)
    assert local.store.sqlite.path == Settings().store.sqlite.path  # sibling keys keep the model default
    monkeypatch.setenv("RUN_ENV", "staging")
    settings = load_settings()
    assert (settings.run_env, settings.ecs.cluster) == ("staging", "staging")
    assert settings.store.sqlite.busy_timeout_seconds == 10  # local's overlay is not applied


def test_run_env_given_as_a_setting_picks_the_overlay_too(config_dir: Path) -> None:
    assert load_settings(run_env="staging").ecs.cluster == "staging"


def test_missing_run_env_file_is_fine(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUN_ENV", "nowhere")
    assert load_settings().ecs.cluster == Settings().ecs.cluster


def test_shipped_overlays_hold_no_copy_of_a_default() -> None:
    """The Settings model is the one source of defaults: an overlay only states differences."""
    defaults = Settings.model_construct().model_dump(mode="json")
    for path in sorted((ROOT / "config").glob("config_*.yaml")):
        for dotted, value in _leaves(yaml.safe_load(path.read_text()) or {}):
            default: Any = defaults
            for part in dotted.split("."):
                default = default.get(part, None) if isinstance(default, dict) else None
            assert value != default, f"{path.name}: {dotted} repeats the default {value!r}"


def _leaves(tree: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    leaves: list[tuple[str, Any]] = []
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            leaves += _leaves(value, f"{prefix}{key}.")
        else:
            leaves.append((f"{prefix}{key}", value))
    return leaves


def test_environment_wins_over_files(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECS__CLUSTER", "from-env")
    monkeypatch.setenv("STORE__BACKEND", "elasticsearch")
    monkeypatch.setenv("STORE__ELASTICSEARCH__HOSTS", '["https://a:9200","https://b:9200"]')
    monkeypatch.setenv("LOG_LEVEL", "debug")
    monkeypatch.setenv("COMPONENT_NAME", "scheduld")
    settings = load_settings()
    assert settings.ecs.cluster == "from-env"
    assert settings.store.backend == "elasticsearch"
    assert settings.store.elasticsearch.hosts == ["https://a:9200", "https://b:9200"]
    assert settings.log_level == "DEBUG"
    assert settings.component_name == "scheduld"


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("COMPONENT_NAME", "worker", "component_name"),
        ("STORE__BACKEND", "mysql", "store.backend"),
        ("WEBAPI__PORT", "http", "webapi.port"),
        ("ECS__STARTED_BY", "x" * 30, "ecs.started_by"),
        ("SQS__WAIT_SECONDS", "60", "sqs.wait_seconds"),
        ("LOG_LEVEL", "LOUD", "log_level"),
    ],
)
def test_invalid_settings_name_the_setting(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_settings()


def test_shipped_profiles_load() -> None:
    for run_env in ("local", "test", "production"):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("STORE__", "ECS__"))}
        env["RUN_ENV"] = run_env
        code = "from common.config import load_settings; s = load_settings(); print(s.store.backend)"
        result = subprocess.run(
            [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
        )
        expected = "elasticsearch" if run_env == "production" else "sqlite"
        assert result.stdout.strip() == expected


def test_production_profile_points_nowhere_local() -> None:
    text = (ROOT / "config" / "config_production.yaml").read_text()
    assert "127.0.0.1" not in text and "localhost" not in text


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "COMPONENT_NAME is not set"),
        ({"COMPONENT_NAME": "worker"}, "component_name"),
        ({"COMPONENT_NAME": "webapi", "WEBAPI__PORT": "x"}, "webapi.port"),
    ],
)
def test_launcher_refuses_bad_component_or_config(env: dict[str, str], message: str) -> None:
    result = _launcher(env=env)
    assert result.returncode == 2
    assert message in result.stderr


def test_launcher_help_explains_the_environment() -> None:
    result = _launcher("--help")
    assert result.returncode == 0, result.stderr
    assert "COMPONENT_NAME" in result.stdout and "RUN_ENV" in result.stdout


def _launcher(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m ecs_scheduler`` with ``env`` over this environment (less the component's)."""
    clean = {k: v for k, v in os.environ.items() if k not in {"COMPONENT_NAME", "WEBAPI__PORT"}}
    return subprocess.run(
        [sys.executable, "-m", "ecs_scheduler", *args],
        env={**clean, **(env or {})},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("option", ["request_timeout", "timeout", "max_retries"])
def test_client_options_cannot_shadow_a_typed_setting(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch, option: str
) -> None:
    """The typed setting is the one place for it (and its environment variable then works)."""
    monkeypatch.setenv("STORE__ELASTICSEARCH__CLIENT_OPTIONS", f'{{"{option}": 1}}')
    with pytest.raises(ConfigError, match="store.elasticsearch.client_options"):
        load_settings()
