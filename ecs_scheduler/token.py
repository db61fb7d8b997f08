"""``ecs-scheduler token create``: a new random API token, shown once, and the tokens-file
entry (its SHA-256 hash, never the token) to paste under ``tokens:`` in ``auth.tokens_file``."""

from __future__ import annotations

import argparse
import secrets
import sys
from typing import get_args

import yaml

from common.config import Role

TOKEN_PREFIX = "ecss_"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ecs-scheduler token", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create a token and print its tokens-file entry")
    create.add_argument("--name", required=True, help="who uses the token (shown in the audit log)")
    create.add_argument(
        "--role", dest="roles", action="append", required=True, choices=get_args(Role), help="repeatable"
    )
    create.add_argument(
        "--task-definition",
        dest="task_definitions",
        action="append",
        metavar="GLOB",
        help="scope the token to jobs whose taskDefinition matches (repeatable; default: all)",
    )
    create.add_argument("--allow-command-override", action="store_true", help="may set container commands")
    args = parser.parse_args(argv)

    from webapi.tokens import TokenEntry, token_hash

    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    entry = TokenEntry(
        name=args.name,
        sha256=token_hash(token),
        roles=list(dict.fromkeys(args.roles)),
        task_definitions=args.task_definitions,
        allow_command_override=args.allow_command_override,
    )
    document = entry.model_dump(by_alias=True, exclude_none=True, exclude_defaults=True)
    document = {"name": entry.name, "sha256": entry.sha256, **document}
    sys.stdout.write(f"token (shown once; store it now): {token}\n\n")
    sys.stdout.write("# add under `tokens:` in the tokens file (auth.tokens_file)\n")
    sys.stdout.write(yaml.safe_dump([document], sort_keys=False))
    return 0
