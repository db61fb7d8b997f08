"""``ecs-scheduler`` / ``python -m ecs_scheduler``: run the component named by COMPONENT_NAME.

The only module that knows both processes; each is imported only when it is the one asked for.
"""

from __future__ import annotations

import logging
import sys

from common.config import ConfigError, load_settings
from common.logging import configure_logging

logger = logging.getLogger("ecs_scheduler")

USAGE = "set COMPONENT_NAME to webapi or scheduld"


def main() -> int:
    if sys.argv[1:2] == ["token"]:
        from ecs_scheduler import token

        return token.main(sys.argv[2:])
    try:
        settings = load_settings()
    except ConfigError as exc:
        sys.stderr.write(f"ecs-scheduler: {exc}\n")
        return 2
    if settings.component_name is None:
        sys.stderr.write(f"ecs-scheduler: COMPONENT_NAME is not set: {USAGE}\n")
        return 2
    configure_logging(settings.log_level, component=settings.component_name)
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
