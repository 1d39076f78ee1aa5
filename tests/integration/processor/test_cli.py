"""Starting a processor: refused against a schema that lacks a migration; the engine's start-up pages
released once it runs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from streamer.runtime import ENGINE_LIBRARY
from streamer.settings import Settings
from streamer.sim.config import SimConfig
from tests.integration.processor.helpers import (
    START_MS,
    check,
    point_records,
    prepare,
    processor_settings,
    produce,
    sample_records,
    start_processor,
    stop,
    streamer,
    until_members,
    wait_consumed,
    want,
)
from tests.procfs import resident_bytes


def test_processor_refuses_to_start_without_the_schema(base_settings: Settings, tmp_path: Path) -> None:
    """`streamer processor` on an unmigrated store exits 1 with one line naming the missing migration."""
    settings = processor_settings(base_settings, data_dir=tmp_path / "fresh")
    done = streamer(settings, "processor", timeout=60)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "missing migration 001_timeseries_raw" in lines[0], done.stderr


@pytest.mark.parametrize(("interval_s", "resident_mb"), [(1.0, range(0, 50)), (0.0, range(140, 1000))])
async def test_a_running_processor_holds_the_engine_library_paged_out(
    kafka_settings: Settings, tmp_path: Path, interval_s: float, resident_mb: range
) -> None:
    """Once it joined its group, and again a few intervals after it stored a window of samples (which
    faults ~80 MB of it back in), a processor holds under 50 MB of the engine's library resident; told
    never to page it out, it holds what loading it made resident (~170 MB) and more."""
    settings = processor_settings(
        kafka_settings, data_dir=tmp_path / "store", processor_engine_pageout_interval_s=interval_s
    )
    await prepare(settings)
    proc = start_processor(settings, tmp_path / "processor.log")
    try:
        await until_members(settings, 1)
        assert resident_bytes(proc.pid, ENGINE_LIBRARY) >> 20 in resident_mb
        config = SimConfig(sites=("site_01",), points=200, seed=1)
        await produce(settings, settings.topic_points, point_records(config))
        await produce(
            settings, settings.topic_samples, sample_records(config, START_MS, START_MS + 3_600_000)
        )
        await wait_consumed(settings, [proc])
        await asyncio.sleep(3 * interval_s)
        assert resident_bytes(proc.pid, ENGINE_LIBRARY) >> 20 in resident_mb
    finally:
        assert stop(proc) == 0, (tmp_path / "processor.log").read_text()
    assert check(settings) == want(config, START_MS, START_MS + 3_600_000)
