"""Per-sample rejects through the real pipeline (Kafka, embedded ClickHouse): a record's bad samples are
counted alone and its valid ones land; future samples alone reach the DLQ."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import orjson
import pytest

from streamer.settings import Settings
from tests.integration.processor.helpers import (
    START_MS,
    clickhouse,
    prepare,
    processor_settings,
    produce,
    read_all,
    start_processor,
    stop,
    wait_consumed,
)

pytestmark = pytest.mark.kafka

MINUTE = 60_000
FUTURE = "2100-01-01T00:00:00Z"
MIXED: list[list[object]] = [
    ["2024-01-01T00:00:00Z", 1.5],
    ["2024-01-01T00:01:00Z", {"value": 1}],
    ["2024-01-01T00:02:00Z", "2"],
    ["2024-01-01T00:03:00Z", [1, 2]],
    ["2024-01-01T00:04:00Z", "1_000"],
    ["2024-01-01T00:05:00Z", "\u0661\u0662"],
    ["2024-01-01T00:06:00Z", True],
]


def _record(point: str, pairs: list[list[object]]) -> tuple[bytes, bytes]:
    return f"s/{point}".encode(), orjson.dumps({"site": "s", "point": point, "samples": pairs})


def _point(name: str) -> bytes:
    return orjson.dumps({"site": "s", "point": name, "collect_enabled": True, "updated_at_ms": START_MS})


async def _rejected(settings: Settings) -> dict[str, float]:
    """streamer_samples_rejected_total by reason, from the running processor's /metrics."""
    url = f"http://127.0.0.1:{settings.processor_web_port}/metrics"
    async with httpx.AsyncClient() as client:
        text = (await client.get(url, timeout=10)).text
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("streamer_samples_rejected_total{"):
            labels, value = line.rsplit(" ", 1)
            out[labels.split('reason="')[1].split('"')[0]] = float(value)
    return out


async def test_a_record_mixing_objects_and_lists_lands_its_valid_samples(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    """Objects, lists, "1_000" and Arabic-Indic digits are counted by reason, the record's valid samples
    land and nothing of it reaches the DLQ; of another record, only its future sample does, alone."""
    settings = processor_settings(kafka_settings)
    log = tmp_path / "processor.log"
    await prepare(settings)
    await produce(settings, settings.topic_points, [(b"s/p0", _point("p0")), (b"s/p1", _point("p1"))])
    proc = start_processor(settings, log)
    try:
        records = [_record("p0", MIXED), _record("p1", [*MIXED[:1], [FUTURE, 9]])]
        await produce(settings, settings.topic_samples, records)
        await wait_consumed(settings, [proc])
        for _ in range(50):  # metrics are updated once the batch is acked
            rejected = await _rejected(settings)
            if rejected:
                break
            await asyncio.sleep(0.1)
    finally:
        assert stop(proc) == 0, log.read_text()[-3000:]

    assert rejected == {"not_scalar": 2, "non_numeric": 2, "future": 1}
    db = settings.clickhouse_database
    rows = clickhouse(
        settings,
        f"SELECT point, toUnixTimestamp64Milli(ts), value FROM {db}.timeseries_raw FINAL ORDER BY point, ts",
    )
    assert rows == [
        ["p0", START_MS, 1.5],
        ["p0", START_MS + 2 * MINUTE, 2.0],
        ["p0", START_MS + 6 * MINUTE, 1.0],
        ["p1", START_MS, 1.5],
    ]
    letters = await read_all(settings, settings.topic_dlq)
    assert [(key, orjson.loads(value or b""), h["error_class"]) for key, value, h, _ in letters] == [
        (b"s/p1", {"site": "s", "point": "p1", "samples": [[FUTURE, 9]]}, "FutureSampleError")
    ]
