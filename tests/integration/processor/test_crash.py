"""Criterion 2: SIGKILLed at random moments while consuming, restarted each time: still exact."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from streamer.settings import Settings
from streamer.sim.config import SimConfig
from tests.integration.processor.helpers import (
    START_MS,
    check,
    committed,
    end_offsets,
    point_records,
    prepare,
    processor_settings,
    produce,
    read_all,
    sample_records,
    start_processor,
    stop,
    wait_consumed,
    want,
)

pytestmark = pytest.mark.kafka

CONFIG = SimConfig(sites=("site_01", "site_02"), points=1500, seed=8)
# Enough records that three runs cannot drain the topic: each is killed by its second commit at
# the latest (commits come every second), however fast the machine.
END_MS = START_MS + 9 * 3_600_000
KILLS = 3


async def test_sigkill_during_consumption_loses_and_duplicates_nothing(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    """Three SIGKILLs at random moments mid-consumption, each followed by a restart: count FINAL,
    distinct keys, value sum and key checksum still equal expected(), and nothing went to the DLQ."""
    # acks flushed every 20,000 rows: commits (and kills) land mid-topic, with acks held or not
    settings = processor_settings(kafka_settings, batch_max_rows=5_000, rollup_flush_rows=20_000)
    await prepare(settings)
    await produce(settings, settings.topic_points, point_records(CONFIG))
    await produce(settings, settings.topic_samples, sample_records(CONFIG, START_MS, END_MS, per_record=200))
    total = sum((await end_offsets(settings, settings.topic_samples)).values())
    log = tmp_path / "processor.log"
    rng = random.Random(20240101)
    kills = 0
    while kills < KILLS:
        proc = start_processor(settings, log)
        try:
            before = sum((await committed(settings, settings.topic_samples)).values())
            start = time.monotonic()
            progress = await _next_commit(settings, before, deadline=start + 60, proc=proc, log=log)
            assert progress is not None, "no progress"  # this run has made (and committed) some progress
            # then a random moment, within the commit interval: acks held or not, a commit under way or not
            await _next_commit(settings, progress, deadline=time.monotonic() + rng.uniform(0.0, 1.0))
        finally:
            assert stop(proc, signal.SIGKILL) == -signal.SIGKILL
        assert sum((await committed(settings, settings.topic_samples)).values()) < total, "killed too late"
        kills += 1
    proc = start_processor(settings, log)
    try:
        await wait_consumed(settings, [proc], timeout=90)
    finally:
        assert stop(proc) == 0, log.read_text()[-3000:]
    assert check(settings) == want(CONFIG, START_MS, END_MS)
    assert await read_all(settings, settings.topic_dlq) == []


async def _next_commit(
    settings: Settings, after: int, *, deadline: float, proc: Any = None, log: Path | None = None
) -> int | None:
    """The committed total of ace.samples once it passes ``after``; None if ``deadline`` came first."""
    while time.monotonic() < deadline:
        now = sum((await committed(settings, settings.topic_samples)).values())
        if now > after:
            return now
        if proc is not None:
            assert proc.poll() is None, log.read_text()[-3000:] if log else "the processor exited"
        await asyncio.sleep(0.02)
    return None
