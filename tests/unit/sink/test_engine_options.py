"""The embedded engine's start options: the caches, the config file, the dirty pages it may keep."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamer.sink import client
from streamer.sink.client import EMBEDDED_ENGINE_OPTIONS, engine_options
from tests.isolation import isolated_settings

RAM = 24 << 30


def test_the_dirty_pages_kept_are_the_setting_as_a_ratio_of_the_engine_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """48 MB of a 24 GiB machine's engine limit (90 % of RAM) is the memory worker's purge ratio."""
    monkeypatch.setattr(client, "_physical_memory", lambda: RAM)
    settings = isolated_settings("engine", tmp_path).model_copy(update={"clickhouse_embedded_dirty_mb": 48})
    options = engine_options(settings, str(tmp_path / "ch"))
    ratio = float(options["memory_worker_purge_dirty_pages_threshold_ratio"])
    assert ratio * 0.9 * RAM == pytest.approx(48 << 20, rel=1e-3)
    assert {k: options[k] for k in EMBEDDED_ENGINE_OPTIONS} == EMBEDDED_ENGINE_OPTIONS
    assert Path(options["config-file"]).is_file()


def test_zero_leaves_the_engine_default(tmp_path: Path) -> None:
    """clickhouse_embedded_dirty_mb=0 sends no purge ratio (the engine keeps its own default)."""
    settings = isolated_settings("engine", tmp_path).model_copy(update={"clickhouse_embedded_dirty_mb": 0})
    assert "memory_worker_purge_dirty_pages_threshold_ratio" not in engine_options(settings, str(tmp_path))
