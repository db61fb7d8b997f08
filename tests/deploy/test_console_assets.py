"""Every console asset ships in the package (pyproject's package-data), so an installed webapi
(the Docker image) serves the same console as a checkout."""

from __future__ import annotations

import fnmatch
import tomllib

from tests.servers import ROOT


def test_package_data_covers_every_console_file() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["webapi"]
    folder = ROOT / "webapi" / "ui"
    files = [path.relative_to(ROOT / "webapi").as_posix() for path in folder.rglob("*") if path.is_file()]
    assert files, "no console files found"
    uncovered = [name for name in files if not any(fnmatch.fnmatch(name, pattern) for pattern in patterns)]
    assert uncovered == []
    assert pyproject["project"]["scripts"]["ecss"] == "ecs_scheduler.cli:main"
