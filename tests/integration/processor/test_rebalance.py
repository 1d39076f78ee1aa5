"""Rebalances mid-stream: a second worker joining and leaving while the first works loses nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from streamer.settings import Settings
from streamer.sim.config import SimConfig
from tests.integration.processor.helpers import (
    START_MS,
    committed,
    dump,
    end_offsets,
    point_records,
    prepare,
    processor_settings,
    produce,
    sample_records,
    start_processor,
    stop,
    union_totals,
    until_members,
    wait_consumed,
    want,
)

pytestmark = pytest.mark.kafka

CONFIG = SimConfig(sites=("site_01", "site_02"), seed=33)
# long enough that both rebalances land mid-stream on a fast machine too (15 min was drained by the
# last one there: each join or leave costs a worker's start-up or a rebalance, not the backlog's size)
END_MS = START_MS + 45 * 60_000
JOINS = 2


async def _progress(settings: Settings, total: int) -> float:
    return sum((await committed(settings, settings.topic_samples)).values()) / total


async def test_workers_joining_and_leaving_mid_stream_lose_nothing(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    """Worker B joins and leaves twice while A consumes a backlog in small batches; every rebalance
    happens before the end, and the union of both stores is exactly expected() (count, sum, checksum)."""
    # each batch's acks flushed after its own recompute, as when every batch recomputed: the backlog
    # then lasts past both rebalances (held acks would consume it faster)
    small = {"batch_max_rows": 400, "rollup_flush_rows": 400}
    a = processor_settings(kafka_settings, data_dir=tmp_path / "a", **small)
    b = processor_settings(kafka_settings, data_dir=tmp_path / "b", **small)
    await prepare(a)
    await prepare(b)
    await produce(a, a.topic_points, point_records(CONFIG))
    await produce(a, a.topic_samples, sample_records(CONFIG, START_MS, END_MS, per_record=3))
    total = sum((await end_offsets(a, a.topic_samples)).values())
    worker_a = start_processor(a, tmp_path / "a.log")
    worker_b = None
    seen: list[float] = []
    try:
        await until_members(a, 1)
        for _ in range(JOINS):
            worker_b = start_processor(b, tmp_path / "b.log")
            await until_members(a, 2)
            seen.append(await _progress(a, total))
            await asyncio.sleep(1.0)
            assert stop(worker_b) == 0, (tmp_path / "b.log").read_text()[-2000:]
            await until_members(a, 1)
            seen.append(await _progress(a, total))
        await wait_consumed(a, [worker_a], timeout=180)
    finally:
        codes = [stop(worker_a)] + ([stop(worker_b)] if worker_b is not None else [])
    assert codes[0] == 0, (tmp_path / "a.log").read_text()[-2000:]
    assert max(seen) < 1.0, f"the backlog was done before the last rebalance: progress {seen}"

    assert union_totals(dump(a) | dump(b)) == want(CONFIG, START_MS, END_MS)
