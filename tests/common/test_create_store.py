"""create_store builds the configured backend and refuses one it does not know."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.config import ConfigError, Settings, SQLiteSettings, StoreSettings
from common.store import create_store
from common.store.sqlite import SQLiteJobStore
from tests.servers import ROOT


def test_sqlite_backend_is_built(tmp_path: Path) -> None:
    store = create_store(Settings(store=StoreSettings(sqlite=SQLiteSettings(path=tmp_path / "j.db"))))
    try:
        assert isinstance(store, SQLiteJobStore)
    finally:
        store.close()


def test_unknown_backend_is_rejected_not_taken_for_elasticsearch() -> None:
    settings = Settings()
    settings.store.backend = "cassandra"  # type: ignore[assignment]  # past validation on purpose
    with pytest.raises(ValueError, match="cassandra"):
        create_store(settings)


@pytest.mark.parametrize(
    ("flavour", "module"), [("elasticsearch", "elasticsearch"), ("opensearch", "opensearchpy")]
)
def test_a_search_backend_without_its_extra_names_the_extra(
    flavour: str, module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # as if the extra were not installed
    settings = Settings(store=StoreSettings(backend="elasticsearch", elasticsearch={"flavour": flavour}))
    with pytest.raises(ConfigError, match=rf"ecs-scheduler\[{flavour}\]"):
        create_store(settings)


def test_launcher_stops_with_the_missing_extra_named() -> None:
    hide = (
        "import sys; sys.modules['opensearchpy'] = None; "  # as if the extra were not installed
        "from ecs_scheduler.__main__ import main; sys.exit(main())"
    )
    env = {
        **os.environ,
        "COMPONENT_NAME": "webapi",
        "STORE__BACKEND": "elasticsearch",
        "STORE__ELASTICSEARCH__FLAVOUR": "opensearch",
    }
    result = subprocess.run(
        [sys.executable, "-c", hide], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "ecs-scheduler[opensearch]" in result.stderr
