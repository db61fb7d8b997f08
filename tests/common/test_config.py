"""Settings: YAML defaults, RUN_ENV overlay, environment variables, clear errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.config import CONFIG_DIR_ENV, ConfigError, load_settings
from tests.servers import ROOT


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "config_default.yaml").write_text(
        "store:\n  sqlite:\n    path: default.db\n    busy_timeout_seconds: 3\necs:\n  cluster: base\n"
    )
    (tmp_path / "config_staging.yaml").write_text("ecs:\n  cluster: staging\n")
    monkeypatch.setenv(CONFIG_DIR_ENV, str(tmp_path))
    for key in list(os.environ):
        if key.startswith(("STORE__", "ECS__", "SQS__", "WEBAPI__", "SCHEDULER__")) or key in {
            "RUN_ENV",
            "LOG_LEVEL",
            "COMPONENT_NAME",
        }:
            monkeypatch.delenv(key)
    return tmp_path


def test_defaults_then_run_env_overlay_deep_merged(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().ecs.cluster == "base"
    monkeypatch.setenv("RUN_ENV", "staging")
    settings = load_settings()
    assert settings.ecs.cluster == "staging"
    assert settings.store.sqlite.busy_timeout_seconds == 3  # sibling keys survive the overlay


def test_missing_run_env_file_is_fine(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUN_ENV", "nowhere")
    assert load_settings().ecs.cluster == "base"


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
    clean = {k: v for k, v in os.environ.items() if k not in {"COMPONENT_NAME", "WEBAPI__PORT"}}
    result = subprocess.run(
        [sys.executable, "-m", "ecs_scheduler"],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert message in result.stderr
