"""Every base image and every compose image is pinned by digest, so a rebuild or a ``docker
compose pull`` gets the bytes that were tested; the tag stays beside it for people. How to bump
one is in the comment above the FROM lines and at the top of docker-compose.yml."""

from __future__ import annotations

import io
import re

import pytest
from dockerfile_parse import DockerfileParser

from tests.deploy.files import services
from tests.servers import ROOT

PINNED = re.compile(r"(?P<name>[a-z0-9][a-z0-9./_-]*):(?P<tag>[\w][\w.-]*)@sha256:[0-9a-f]{64}")
DOCKERFILES = sorted(ROOT.glob("Dockerfile*"))


def base_images(path: str) -> list[str]:
    """Each FROM's image, except those naming an earlier stage (``FROM builder``)."""
    parser = DockerfileParser(fileobj=io.BytesIO((ROOT / path).read_bytes()))
    images: list[str] = []
    stage_names: set[str] = set()
    for item in parser.structure:
        if item["instruction"] != "FROM":
            continue
        words = [w for w in item["value"].split() if not w.startswith("--")]
        if words[0] not in stage_names:
            images.append(words[0])
        if len(words) == 3 and words[1].upper() == "AS":
            stage_names.add(words[2])
    return images


def test_the_dockerfiles_are_found() -> None:
    assert {p.name for p in DOCKERFILES} >= {"Dockerfile.webapi", "Dockerfile.scheduld"}


@pytest.mark.parametrize("path", [p.name for p in DOCKERFILES])
def test_every_base_image_is_pinned_by_digest(path: str) -> None:
    images = base_images(path)
    assert images, f"{path}: no FROM"
    loose = [image for image in images if not PINNED.fullmatch(image)]
    assert not loose, f"{path}: not image:tag@sha256:<64 hex>: {loose}"


def test_every_compose_image_is_pinned_by_digest() -> None:
    images = {name: svc["image"] for name, svc in services().items() if "image" in svc}
    assert images, "docker-compose.yml names no image"
    loose = {name: image for name, image in images.items() if not PINNED.fullmatch(image)}
    assert not loose, f"not image:tag@sha256:<64 hex>: {loose}"


@pytest.mark.parametrize(
    "image",
    ["python:3.11-slim", "python@sha256:" + "a" * 64, "python:3.11-slim@sha256:" + "a" * 63],
)
def test_a_tag_alone_or_a_short_digest_is_not_pinned(image: str) -> None:
    assert not PINNED.fullmatch(image)
