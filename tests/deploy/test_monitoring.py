"""deploy/: the Prometheus alerts and the Grafana dashboard name only metrics the code exports;
the images' HEALTHCHECKs and compose's monitoring profile point at what the processes serve.

Exported names come from prometheus_client's registry after importing the modules that define
the metrics (both processes', as one scrape config covers both), not from a list kept here.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.metrics import PREFIX, exported_names

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "ecs-scheduler.json"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
# series Prometheus makes itself for every target, not exported by our code
SYNTHETIC = {"up"}
_METRIC = re.compile(r"\b(" + PREFIX + r"[a-zA-Z0-9_]+|up)\b(?!\s*\()")


@pytest.fixture(scope="module")
def exported() -> set[str]:
    import common.health  # noqa: F401 - readiness gauges
    import scheduld.metrics  # noqa: F401
    import webapi.observability  # noqa: F401

    names = {name for name in exported_names() if name.startswith(PREFIX)}
    assert len(names) > 40, names  # the modules really registered their metrics
    return names


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    document = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in document["panels"] for target in panel.get("targets", [])]


def metrics_in(expr: str) -> set[str]:
    return set(_METRIC.findall(expr))


def test_every_alert_names_only_exported_metrics(exported: set[str]) -> None:
    rules = alert_rules()
    names = {rule["alert"] for rule in rules}
    wanted = {"NoLeader", "FireLagHigh", "LaunchFailures", "DeadLetters", "LeaseFlapping", "NotReady"}
    assert {f"EcsScheduler{n}" for n in wanted} <= names
    for rule in rules:
        used = metrics_in(rule["expr"])
        assert used, f"{rule['alert']}: names no metric"
        unknown = used - exported - SYNTHETIC
        assert not unknown, f"{rule['alert']} names metrics the code does not export: {unknown}"
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        assert rule["annotations"]["summary"]


def test_every_dashboard_query_names_only_exported_metrics(exported: set[str]) -> None:
    exprs = dashboard_exprs()
    assert len(exprs) >= 15
    used: set[str] = set()
    for expr in exprs:
        names = metrics_in(expr)
        assert names, f"query names no metric: {expr}"
        assert not names - exported, f"{expr}: unknown {names - exported}"
        used |= names
    # the dashboard shows every family the processes export (per-job series are opt-in)
    families = {re.sub(r"_(total|bucket|count|sum|created)$", "", n) for n in exported}
    shown = {re.sub(r"_(total|bucket|count|sum|created)$", "", n) for n in used}
    assert families - shown <= {PREFIX + "job_fires"}, families - shown


def test_the_metric_check_itself_catches_a_typo(exported: set[str]) -> None:
    assert metrics_in("rate(ecs_scheduler_fires_totl[5m])") - exported == {"ecs_scheduler_fires_totl"}
    assert metrics_in("histogram_quantile(0.9, sum by (le) (rate(x[1m])))") == set()


PROMTOOL = shutil.which("promtool") or shutil.which(
    "promtool", path=str(Path(__file__).parents[2] / ".tools/prometheus/usr/bin")
)
"""On the PATH, or where .ci/run unpacks it from Debian's prometheus package."""


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (.ci/run unpacks it into .tools/)")
def test_promtool_accepts_the_rules_and_the_config(tmp_path: Path) -> None:
    assert PROMTOOL is not None
    result = subprocess.run([PROMTOOL, "check", "rules", str(ALERTS)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    config = tmp_path / "prometheus.yml"  # the config names the rules file by its container path
    config.write_text(PROMETHEUS.read_text().replace("/etc/prometheus/alerts.yml", str(ALERTS)))
    result = subprocess.run([PROMTOOL, "check", "config", str(config)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _healthcheck_url(dockerfile: str) -> str:
    text = (ROOT / dockerfile).read_text().replace("\\\n", " ")
    (line,) = [line for line in text.splitlines() if line.startswith("HEALTHCHECK")]
    command = json.loads(line.split("CMD", 1)[1])
    compile(command[2], "<healthcheck>", "exec")
    match = re.search(r"'(http://127\.0\.0\.1:%s/[a-z]+)'", command[2])
    assert match, command
    return match.group(1)


def test_both_images_check_readiness() -> None:
    assert _healthcheck_url("Dockerfile.webapi") == "http://127.0.0.1:%s/readyz"
    assert _healthcheck_url("Dockerfile.scheduld") == "http://127.0.0.1:%s/readyz"
    scheduld = (ROOT / "Dockerfile.scheduld").read_text()
    assert "SCHEDULER__HTTP_HOST=0.0.0.0" in scheduld and "EXPOSE 9100" in scheduld


def test_compose_monitoring_profile_scrapes_both_processes() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert services["prometheus"]["profiles"] == ["monitoring"]
    assert services["grafana"]["profiles"] == ["monitoring"]
    for app in ("webapi", "scheduld"):
        assert "profiles" not in services[app]
        assert services["prometheus"]["depends_on"][app]["condition"] == "service_healthy"
    assert services["scheduld"]["depends_on"]["webapi"]["condition"] == "service_healthy"
    targets = {
        target
        for job in yaml.safe_load(PROMETHEUS.read_text())["scrape_configs"]
        for config in job["static_configs"]
        for target in config["targets"]
    }
    assert targets == {"webapi:5000", "scheduld:9100"}
    mounts = [str(v).split(":")[0] for s in ("prometheus", "grafana") for v in services[s]["volumes"]]
    for source in mounts:
        assert (ROOT / source).exists(), source
