"""Batch identity: a recreated ``ace.samples`` reuses offsets, and ClickHouse (kept) must not take its
batches for retries of the old ones."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from streamer.kafka import ensure_topics
from streamer.settings import Settings
from tests.integration.processor.helpers import (
    START_MS,
    Record,
    clickhouse,
    prepare,
    processor_settings,
    produce,
    start_processor,
    stop,
    wait_consumed,
)

pytestmark = pytest.mark.kafka

MINUTE = 60_000
POINTS = ("p0", "p1", "p2")


def _samples(first_minute: int) -> list[Record]:
    """One record per point, five samples from ``first_minute`` on."""
    out: list[Record] = []
    for i, point in enumerate(POINTS):
        pairs = [[f"2024-01-01T00:{first_minute + m:02d}:00Z", i * 100 + first_minute + m] for m in range(5)]
        out.append((f"s/{point}".encode(), orjson.dumps({"site": "s", "point": point, "samples": pairs})))
    return out


async def _recreate(settings: Settings, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        await admin.delete_topics([topic])
        deadline = time.monotonic() + 60
        while topic in await admin.list_topics():
            assert time.monotonic() < deadline, f"{topic} not deleted"
            await asyncio.sleep(0.2)
    finally:
        await admin.close()
    deadline = time.monotonic() + 60
    while True:  # the broker may still be removing the old partitions
        try:
            if topic in await ensure_topics(settings):
                return
        except KafkaError:
            pass
        assert time.monotonic() < deadline, f"{topic} not recreated"
        await asyncio.sleep(0.5)


async def _run(settings: Settings, log: Path, records: list[Record]) -> None:
    await produce(settings, settings.topic_samples, records)
    proc = start_processor(settings, log)
    try:
        await wait_consumed(settings, [proc])
    finally:
        assert stop(proc) == 0, log.read_text()[-3000:]


async def test_a_recreated_topic_with_the_same_offsets_skips_nothing(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    """Run, delete and recreate ace.samples, run again with other records at the same offsets: both
    runs' rows are in ClickHouse, exactly."""
    settings = processor_settings(kafka_settings.model_copy(update={"samples_partitions": 1}))
    log = tmp_path / "processor.log"
    await prepare(settings)
    points = [
        (f"s/{p}".encode(), orjson.dumps({"site": "s", "point": p, "updated_at_ms": START_MS}))
        for p in POINTS
    ]
    await produce(settings, settings.topic_points, points)
    await _run(settings, log, _samples(0))
    await _recreate(settings, settings.topic_samples)
    # A new cluster: the old group's offsets mean nothing there (ClickHouse is the one kept).
    again = settings.model_copy(update={"processor_app_id": settings.processor_app_id + "-2"})
    await _run(again, log, _samples(10))

    db = settings.clickhouse_database
    rows = clickhouse(
        settings,
        f"SELECT point, toUnixTimestamp64Milli(ts), value FROM {db}.timeseries_raw FINAL ORDER BY point, ts",
    )
    want = [
        [point, START_MS + (first + m) * MINUTE, float(i * 100 + first + m)]
        for i, point in enumerate(POINTS)
        for first in (0, 10)
        for m in range(5)
    ]
    assert rows == want
