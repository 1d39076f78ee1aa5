"""A migrated, filled embedded store and a live query API for the attacks (same data as the query tests)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from streamer.settings import Settings, load_settings
from tests.integration.query.conftest import Data, LiveServer, fill


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Data]:
    """Settings of a private, migrated, filled store (one per module)."""
    data_dir: Path = tmp_path_factory.mktemp("security") / "data"
    settings = load_settings(data_dir=data_dir, kafka_bootstrap_servers="127.0.0.1:1")
    return settings, fill(settings)


@pytest.fixture(scope="module")
def api(store: tuple[Settings, Data]) -> Iterator[LiveServer]:
    """The stand-alone API on the store, with default limits."""
    with LiveServer(store[0]) as server:
        yield server
