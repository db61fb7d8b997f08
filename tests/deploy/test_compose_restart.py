"""The compose stack heals like `make run`: every long-running service restarts unless it was
stopped on purpose; one-shot services do not."""

from __future__ import annotations

from typing import Any

import yaml

from tests.servers import ROOT

ONE_SHOT = {"bootstrap"}


def test_every_long_running_service_restarts_unless_stopped() -> None:
    compose: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) - ONE_SHOT, "no long-running services found"
    for name, service in services.items():
        expected = "no" if name in ONE_SHOT else "unless-stopped"
        assert service.get("restart") == expected, f"{name}: restart is {service.get('restart')!r}"
