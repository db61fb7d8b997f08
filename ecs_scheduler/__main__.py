"""``ecs-scheduler`` / ``python -m ecs_scheduler``: run the component named by COMPONENT_NAME.

The only module that knows both processes; each is imported only when it is the one asked for.
"""

from __future__ import annotations

import argparse
import logging
import sys

from common.config import ConfigError, load_settings
from common.logging import configure_logging
from common.store import check_backend

logger = logging.getLogger("ecs_scheduler")

USAGE = "set COMPONENT_NAME to webapi or scheduld"
EPILOG = """\
environment:
  COMPONENT_NAME   webapi (the REST API) or scheduld (the scheduler daemon)
  RUN_ENV          which config/config_${RUN_ENV}.yaml overlays the defaults (default: local)
  any setting      nested with "__", e.g. STORE__BACKEND=elasticsearch, ECS__CLUSTER=prod;
                   the README's configuration table lists them all
  AWS_*            the standard AWS SDK variables (region, endpoint, credentials)

examples:
  COMPONENT_NAME=webapi ecs-scheduler
  COMPONENT_NAME=scheduld RUN_ENV=production ecs-scheduler

other command:
  ecs-scheduler token create --help   a new API token and its tokens-file entry
"""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["token"]:
        from ecs_scheduler import token

        return token.main(args[1:])
    argparse.ArgumentParser(
        prog="ecs-scheduler",
        description="Run one component of ECS Scheduler, configured by the environment.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    ).parse_args(args)
    try:
        settings = load_settings()
        check_backend(settings)
    except ConfigError as exc:
        sys.stderr.write(f"ecs-scheduler: {exc}\n")
        return 2
    if settings.component_name is None:
        sys.stderr.write(f"ecs-scheduler: COMPONENT_NAME is not set: {USAGE}\n")
        return 2
    configure_logging(
        settings.log_level,
        component=settings.component_name,
        fmt=settings.log_format,
        hold_seconds=settings.log_hold_seconds,
    )
    logger.info(
        "starting %s (RUN_ENV=%s, store=%s)",
        settings.component_name,
        settings.run_env,
        settings.store.backend,
    )
    try:
        if settings.component_name == "webapi":
            import webapi

            try:
                return webapi.serve(settings)
            except ConfigError as exc:  # e.g. auth.mode tokens without credentials
                sys.stderr.write(f"ecs-scheduler: webapi: {exc}\n")
                return 2
        import scheduld

        return scheduld.run(settings)
    except Exception:
        logger.critical("%s stopped on an unexpected error", settings.component_name, exc_info=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
