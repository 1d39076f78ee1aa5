"""Acks wait for the rollups (pending_acks), against the real broker and engine: no offset is
committed before the recompute of its keys, and a worker killed or stopped with acks held leaves
timeseries_raw and rollup_1h exact."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from streamer.settings import Settings
from streamer.sim.config import SimConfig
from tests.integration.processor.helpers import (
    START_MS,
    check,
    clickhouse,
    committed,
    end_offsets,
    point_records,
    prepare,
    processor_settings,
    produce,
    sample_records,
    start_processor,
    stop,
    wait_consumed,
    want,
)

pytestmark = pytest.mark.kafka

CONFIG = SimConfig(sites=("site_01",), points=200, seed=11)
END_MS = START_MS + 2 * 3_600_000
# Flush bounds out of reach, and every batch full (one record each: a backlog, so its acks are held
# for a shared recompute): acks are held until the worker stops (or is killed).
HELD: dict[str, Any] = {"rollup_flush_rows": 10**9, "rollup_flush_s": 3600.0, "batch_max_rows": 1}


async def _sql(settings: Settings, text: str) -> list[list[Any]]:
    """Rows of ``text`` through the running processor's query API (the engine is its own)."""
    async with httpx.AsyncClient(timeout=30) as client:
        url = f"http://127.0.0.1:{settings.processor_web_port}/api/v1/sql"
        response = await client.post(url, json={"sql": text})
    assert response.status_code == 200, response.text
    rows: list[list[Any]] = response.json()["rows"]
    return rows


async def _stored_while_held(settings: Settings, log: Path) -> None:
    """Until every valid sample is in timeseries_raw; meanwhile nothing may be committed."""
    db = settings.clickhouse_database
    count = want(CONFIG, START_MS, END_MS)[0]
    deadline = time.monotonic() + 120
    while True:
        try:
            stored = int((await _sql(settings, f"SELECT count() FROM {db}.timeseries_raw FINAL"))[0][0])
        except httpx.TransportError:
            stored = 0  # the web server is not up yet
        if stored == count:
            break
        assert time.monotonic() < deadline, f"{stored} of {count} stored; {log.read_text()[-2000:]}"
        await asyncio.sleep(0.3)
    assert sum((await committed(settings, settings.topic_samples)).values()) == 0
    assert int((await _sql(settings, f"SELECT count() FROM {db}.rollup_1h"))[0][0]) == 0


def _rollups_exact(settings: Settings) -> None:
    db = settings.clickhouse_database
    stored = clickhouse(
        settings, f"SELECT point, bucket, count, sum, min, max FROM {db}.rollup_1h_v ORDER BY 1, 2"
    )
    fresh = clickhouse(
        settings,
        f"SELECT point, toStartOfHour(ts) AS b, count(), sum(value), min(value), max(value) "
        f"FROM {db}.timeseries_raw FINAL GROUP BY point, b ORDER BY 1, 2",
    )
    assert len(stored) == len(fresh) > 0
    assert stored == fresh


async def _fill(settings: Settings) -> None:
    await prepare(settings)
    await produce(settings, settings.topic_points, point_records(CONFIG))
    # 20 samples a record: every point-hour comes in three records, spread over several batches
    await produce(settings, settings.topic_samples, sample_records(CONFIG, START_MS, END_MS, per_record=20))


async def test_a_kill_with_acks_held_commits_nothing_and_the_restart_leaves_rollups_exact(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    """Every row stored while no offset is committed and no rollup row exists (acks held for the
    recompute); SIGKILLed then, and restarted with the default bounds: every offset is committed,
    timeseries_raw equals expected() and rollup_1h a GROUP BY over timeseries_raw FINAL."""
    held = processor_settings(kafka_settings, **HELD)
    await _fill(held)
    log = tmp_path / "processor.log"
    proc = start_processor(held, log)
    try:
        await _stored_while_held(held, log)
    finally:
        assert stop(proc, signal.SIGKILL) == -signal.SIGKILL
    assert sum((await committed(held, held.topic_samples)).values()) == 0
    again = processor_settings(kafka_settings)
    proc = start_processor(again, log)
    try:
        await wait_consumed(again, [proc], timeout=120)
    finally:
        assert stop(proc) == 0, log.read_text()[-3000:]
    assert check(again) == want(CONFIG, START_MS, END_MS)
    _rollups_exact(again)


async def test_a_stop_with_acks_held_recomputes_then_commits_them(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    """SIGTERM while acks are held: the worker recomputes their keys, acks and commits every offset
    before it exits, and rollup_1h equals a GROUP BY over timeseries_raw FINAL."""
    held = processor_settings(kafka_settings, **HELD)
    await _fill(held)
    log = tmp_path / "processor.log"
    proc = start_processor(held, log)
    try:
        await _stored_while_held(held, log)
    finally:
        assert stop(proc) == 0, log.read_text()[-3000:]
    ends = await end_offsets(held, held.topic_samples)
    assert await committed(held, held.topic_samples) == ends
    assert check(held) == want(CONFIG, START_MS, END_MS)
    _rollups_exact(held)
