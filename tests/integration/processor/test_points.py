"""Criterion 3: a tombstoned point stops landing, lands again once re-enabled; restarts keep the table."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

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


def point(name: str) -> Record:
    value = {"site": "s", "point": name, "collect_enabled": True, "updated_at_ms": START_MS}
    return f"s/{name}".encode(), orjson.dumps(value)


def tombstone(name: str) -> Record:
    return f"s/{name}".encode(), None


def minute_samples(step: int, *names: str) -> list[Record]:
    """One sample per point at minute ``step`` (value: the step)."""
    when = f"2024-01-01T00:{step:02d}:00Z"
    return [
        (f"s/{n}".encode(), orjson.dumps({"site": "s", "point": n, "samples": [[when, step]]})) for n in names
    ]


async def test_disable_enable_and_restart(kafka_settings: Settings, tmp_path: Path) -> None:
    """Samples published right after a tombstone are dropped, right after re-enabling they land, and
    after a restart the recovered table still collects both points: exactly these rows remain."""
    settings = processor_settings(kafka_settings)
    log = tmp_path / "processor.log"
    await prepare(settings)
    await produce(settings, settings.topic_points, [point("p1"), point("p2")])
    proc = start_processor(settings, log)
    try:
        await produce(settings, settings.topic_samples, minute_samples(1, "p1", "p2"))
        await wait_consumed(settings, [proc])
        # Each change is acked before the samples that follow it are published, as the producer does.
        await produce(settings, settings.topic_points, [tombstone("p2")])
        await produce(settings, settings.topic_samples, minute_samples(2, "p1", "p2"))
        await wait_consumed(settings, [proc])
        await produce(settings, settings.topic_points, [point("p2")])
        await produce(settings, settings.topic_samples, minute_samples(3, "p1", "p2"))
        await wait_consumed(settings, [proc])
    finally:
        assert stop(proc) == 0, log.read_text()[-3000:]

    proc = start_processor(settings, log)
    try:
        await produce(settings, settings.topic_samples, minute_samples(4, "p1", "p2"))
        await wait_consumed(settings, [proc])
    finally:
        assert stop(proc) == 0, log.read_text()[-3000:]

    db = settings.clickhouse_database
    rows = clickhouse(
        settings,
        f"SELECT point, toUnixTimestamp64Milli(ts), value FROM {db}.timeseries_raw FINAL ORDER BY point, ts",
    )
    assert rows == [
        ["p1", START_MS + 1 * MINUTE, 1.0],
        ["p1", START_MS + 2 * MINUTE, 2.0],
        ["p1", START_MS + 3 * MINUTE, 3.0],
        ["p1", START_MS + 4 * MINUTE, 4.0],
        ["p2", START_MS + 1 * MINUTE, 1.0],
        ["p2", START_MS + 3 * MINUTE, 3.0],
        ["p2", START_MS + 4 * MINUTE, 4.0],
    ]
    points = clickhouse(settings, f"SELECT point, collect_enabled FROM {db}.points FINAL ORDER BY point")
    assert points == [["p1", 1], ["p2", 1]]
