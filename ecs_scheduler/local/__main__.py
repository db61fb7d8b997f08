"""`make run`: start the whole stack on this machine, no AWS account and no Docker needed.

    python -m ecs_scheduler.local            # emulator + webapi + scheduld, supervised
    python -m ecs_scheduler.local emulator   # just the AWS emulator (one Procfile entry)
    python -m ecs_scheduler.local wait       # block until the emulator answers
    python -m ecs_scheduler.local seed       # only seed an emulator (compose stack's bootstrap)
    python -m ecs_scheduler.local reaper     # only stop finished emulated tasks (compose stack)

Ports: the emulator listens on 127.0.0.1:$LOCAL_AWS_PORT (default 4566), webapi on
$WEBAPI__PORT (default 5000). A crashed webapi or scheduld is restarted with backoff; Ctrl-C,
or the emulator's death, stops all three.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from common.config import load_settings
from common.logging import configure_logging

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_AWS_PORT = 4566
COMMANDS = ("stack", "emulator", "wait", "seed", "reaper")
ESSENTIAL = frozenset({"aws"})  # Procfile entries the stack cannot run without


def local_environment() -> dict[str, str]:
    """The environment every process of the local stack shares; existing values win."""
    env = dict(os.environ)
    port = env.setdefault("LOCAL_AWS_PORT", str(DEFAULT_AWS_PORT))
    env.setdefault("RUN_ENV", "local")
    env.setdefault("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    env.setdefault("AWS_ACCESS_KEY_ID", "local")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    env.setdefault("AWS_REGION", "us-east-1")
    env.setdefault("AWS_DEFAULT_REGION", env["AWS_REGION"])
    env.setdefault("PYTHONUNBUFFERED", "1")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def run_stack() -> int:
    """The Procfile's processes under the supervisor: a crashed webapi or scheduld restarts
    with backoff; the emulator's death or Ctrl-C stops the stack."""
    from ecs_scheduler.local.supervisor import Program, Supervisor, read_procfile

    programs = [
        Program(name, command, essential=name in ESSENTIAL)
        for name, command in read_procfile(ROOT / "Procfile")
    ]
    return Supervisor(programs, env=local_environment(), cwd=ROOT).run()


def wait_for_emulator(timeout: float = 60.0) -> int:
    """Block until the emulator answers and its seeding finished (the cluster has instances)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from common import aws
    from common.retry import retrying
    from ecs_scheduler.local.emulator import CONTAINER_INSTANCES

    settings = load_settings()
    ecs = aws.client("ecs")

    def ready() -> None:
        found = ecs.describe_clusters(clusters=[settings.ecs.cluster])["clusters"]
        if not found or found[0].get("registeredContainerInstancesCount", 0) < CONTAINER_INSTANCES:
            raise _NotReady

    policy = retrying(
        settings.retry.model_copy(update={"max_wait_seconds": 0.5}),  # a local process: poll briskly
        temporary=(BotoCoreError, ClientError, _NotReady),
        logger=None,  # waiting for a starting emulator is expected: no line per try
        give_up_after=timeout,
    )
    try:
        policy(ready)
    except (BotoCoreError, ClientError, _NotReady):
        endpoint = os.environ["AWS_ENDPOINT_URL"]
        sys.stderr.write(f"AWS emulator at {endpoint} not ready within {timeout:.0f} s\n")
        return 1
    return 0


class _NotReady(Exception):
    """The emulator answers but its seeding has not finished."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ecs_scheduler.local", description=__doc__)
    parser.add_argument("command", nargs="?", default="stack", choices=COMMANDS)
    args = parser.parse_args(argv)
    if args.command == "stack":
        return run_stack()
    os.environ.update(local_environment())
    if args.command == "wait":
        return wait_for_emulator()
    from ecs_scheduler.local.emulator import reap, seed_when_up, serve

    settings = load_settings()
    configure_logging(settings.log_level, component="aws")
    if args.command == "seed":
        return seed_when_up(settings)
    if args.command == "reaper":
        return reap(settings)
    return serve(settings, port=int(os.environ["LOCAL_AWS_PORT"]))


if __name__ == "__main__":
    sys.exit(main())
