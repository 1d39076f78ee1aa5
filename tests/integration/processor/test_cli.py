"""Starting a processor: refused against a schema that lacks a migration; the engine's start-up pages
released once it runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamer.processor.cli import ENGINE_LIBRARY
from streamer.settings import Settings
from tests.integration.processor.helpers import (
    prepare,
    processor_settings,
    start_processor,
    stop,
    streamer,
    until_members,
)


def test_processor_refuses_to_start_without_the_schema(base_settings: Settings, tmp_path: Path) -> None:
    """`streamer processor` on an unmigrated store exits 1 with one line naming the missing migration."""
    settings = processor_settings(base_settings, data_dir=tmp_path / "fresh")
    done = streamer(settings, "processor", timeout=60)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "missing migration 001_timeseries_raw" in lines[0], done.stderr


def _engine_library_resident_mb(pid: int) -> int:
    """Resident MB of the embedded engine's shared object in process ``pid``."""
    resident, inside = 0, False
    with open(f"/proc/{pid}/smaps", encoding="utf-8") as smaps:
        for line in smaps:
            head = line.split(maxsplit=1)[0]
            if "-" in head and not head.endswith(":"):
                inside = ENGINE_LIBRARY in line
            elif inside and head == "Rss:":
                resident += int(line.split()[1])
    return resident >> 10


@pytest.mark.parametrize(("release", "resident_mb"), [(True, range(0, 100)), (False, range(140, 1000))])
async def test_a_started_processor_holds_the_engine_library_paged_out(
    kafka_settings: Settings, tmp_path: Path, release: bool, resident_mb: range
) -> None:
    """Once it joined its group, a processor holds under 100 MB of the engine's library resident (about
    170 MB are, loaded, which it keeps when told not to page them out)."""
    settings = processor_settings(
        kafka_settings, data_dir=tmp_path / "store", processor_release_engine_pages=release
    )
    await prepare(settings)
    proc = start_processor(settings, tmp_path / "processor.log")
    try:
        await until_members(settings, 1)
        assert _engine_library_resident_mb(proc.pid) in resident_mb
    finally:
        assert stop(proc) == 0, (tmp_path / "processor.log").read_text()
