"""The processor refuses to start against a ClickHouse schema that lacks a migration."""

from __future__ import annotations

from pathlib import Path

from streamer.settings import Settings
from tests.integration.processor.helpers import processor_settings, streamer


def test_processor_refuses_to_start_without_the_schema(base_settings: Settings, tmp_path: Path) -> None:
    """`streamer processor` on an unmigrated store exits 1 with one line naming the missing migration."""
    settings = processor_settings(base_settings, data_dir=tmp_path / "fresh")
    done = streamer(settings, "processor", timeout=60)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "missing migration 001_timeseries_raw" in lines[0], done.stderr
