"""The README's ``ecss`` examples, run in order against the API: the documentation works."""

from __future__ import annotations

import shlex
from pathlib import Path

import httpx

from tests.cli.conftest import Ecss
from tests.servers import ROOT

CONSUMER = "taskDefinition: consumer-task\nschedule: '? */3'\n"


def readme_commands() -> list[list[str]]:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Command-line client: `ecss`", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        for command in " ".join(shlex.quote(w) if w != "&&" else w for w in words).split(" && "):
            commands.append(shlex.split(command))
    return commands


def test_readme_examples_run(ecss: Ecss, http: httpx.Client, tmp_path: Path) -> None:
    (tmp_path / "consumer.yaml").write_text(CONSUMER)
    commands = readme_commands()
    assert len(commands) >= 15
    for command in commands:
        assert command[0] == "ecss", command
        if command[1:] == ["--install-completion"]:
            continue  # it writes into the user's shell startup files
        result = ecss(*command[1:])
        assert result.returncode == 0, (command, result.stderr)
    jobs = {job["id"]: job for job in http.get("/jobs").json()["jobs"]}
    assert sorted(jobs) == ["consumer-task", "sleeper-task"]
    assert jobs["consumer-task"]["maxCount"] == 10
    assert jobs["sleeper-task"]["suspended"] is False
