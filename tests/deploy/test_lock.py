"""The hashed locks cover pyproject.toml: every requirement is pinned at a version it accepts,
with hashes, and the images' runtime lock holds no development tool. Fails until `make lock`
is run after a dependency changes."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.servers import ROOT

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
SELF = canonicalize_name(PROJECT["name"])
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def locked(path: Path) -> dict[str, Version]:
    """name → pinned version; every pin must carry at least one hash."""
    pins: dict[str, Version] = {}
    text = path.read_text()
    for block in re.split(r"\n(?=\S)", text):
        match = _PIN.match(block)
        if match is None:
            continue
        assert "--hash=sha256:" in block, f"{path.name}: {match.group(1)} has no hash"
        pins[canonicalize_name(match.group(1))] = Version(match.group(2))
    return pins


def requirements(*extras: str) -> list[Requirement]:
    """What installing the project with ``extras`` asks for, self-references expanded."""
    wanted = [Requirement(text) for text in PROJECT["dependencies"]]
    todo, seen = list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for text in PROJECT["optional-dependencies"][extra]:
            requirement = Requirement(text)
            if canonicalize_name(requirement.name) == SELF:
                todo += sorted(requirement.extras)
            else:
                wanted.append(requirement)
    return wanted


def _applies(requirement: Requirement) -> bool:
    environment = {**default_environment(), "python_version": "3.11", "extra": ""}
    return requirement.marker is None or requirement.marker.evaluate(environment)


@pytest.mark.parametrize(
    ("lock", "extras"),
    [("dev.txt", ("dev",)), ("runtime.txt", ("elasticsearch", "opensearch"))],
)
def test_lock_pins_every_requirement_at_an_accepted_version(lock: str, extras: tuple[str, ...]) -> None:
    pins = locked(ROOT / "requirements" / lock)
    for requirement in filter(_applies, requirements(*extras)):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{lock} lacks {requirement}: run `make lock`"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{lock} pins {name}=={pins[name]}, outside {requirement}: run `make lock`"
        )


def test_runtime_lock_holds_no_development_tool() -> None:
    runtime = locked(ROOT / "requirements" / "runtime.txt")
    tools = {canonicalize_name(r.name) for r in requirements("dev")} - {
        canonicalize_name(r.name) for r in requirements("elasticsearch", "opensearch")
    }
    assert not tools & set(runtime), f"runtime lock holds {sorted(tools & set(runtime))}"


def test_make_install_uses_the_dev_lock_with_hashes() -> None:
    """(The images' use of the runtime lock: tests/deploy/test_images.py.)"""
    makefile = (ROOT / "Makefile").read_text()
    assert "LOCK := requirements/dev.txt" in makefile
    assert re.search(r"pip install [^\n]*--require-hashes -r \$\(LOCK\)", makefile)
