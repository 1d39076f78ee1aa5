"""Criterion 4: poison records reach the DLQ with every header, good ones around them land, and a
dead letter replayed after the fix lands once (twice: no change)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
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
    read_all,
    start_processor,
    stop,
    streamer,
    wait_consumed,
)

pytestmark = pytest.mark.kafka

MINUTE = 60_000
POINTS = [f"p{i}" for i in range(5)]
HEADERS = {
    "error_class",
    "error_message",
    "stage",
    "attempts",
    "first_failed_at",
    "last_failed_at",
    "source_topic",
    "source_partition",
    "source_offset",
    "batch_token",
    "app_version",
}


def record(point: str, pairs: list[list[object]]) -> Record:
    return f"s/{point}".encode(), orjson.dumps({"site": "s", "point": point, "samples": pairs})


def good(point: int) -> Record:
    return record(POINTS[point], [[f"2024-01-01T00:0{m}:00Z", point * 10 + m] for m in range(5)])


POISON = record("p0", [["2024-01-01T00:09:00Z", 5e6]])  # ClickHouse refuses it while the fault is on
BAD_JSON = (b"s/p1", b'{"site": "s", "point": "p1", "samples": [[')
WRONG_SHAPE = (b"s/p2", b'{"site": "s", "point": "p2", "samples": "oops"}')
WRONG_VALUE = record("p3", [["2024-01-01T00:08:00Z", {"value": 1}]])  # rejected alone: no dead letter
GOOD_ROWS = [[p, START_MS + m * MINUTE, float(i * 10 + m)] for i, p in enumerate(POINTS) for m in range(5)]
POISON_ROW = ["p0", START_MS + 9 * MINUTE, 5e6]


async def fault(settings: Settings, action: str, **params: str) -> None:
    url = f"http://127.0.0.1:{settings.processor_web_port}/_faults/{action}"
    async with httpx.AsyncClient() as client:
        for _ in range(100):  # the web server starts with the worker
            try:
                (await client.post(url, params=params, timeout=10)).raise_for_status()
                return
            except httpx.TransportError:
                await asyncio.sleep(0.2)
    raise AssertionError(f"{url} unreachable")


def rows(settings: Settings) -> list[list[object]]:
    db = settings.clickhouse_database
    sql = f"SELECT point, toUnixTimestamp64Milli(ts), value FROM {db}.timeseries_raw FINAL ORDER BY point, ts"
    return clickhouse(settings, sql)


async def replay_once(settings: Settings, log: Path) -> None:
    proc = start_processor(settings, log)
    try:
        done = await asyncio.to_thread(
            streamer, settings, "dlq", "replay", "--error-class", "SinkPermanentError"
        )
        assert done.returncode == 0, done.stderr
        assert "replayed 1 of 1 matching" in done.stdout
        await wait_consumed(settings, [proc])
    finally:
        assert stop(proc) == 0, log.read_text()[-3000:]


async def test_poison_records_are_dead_lettered_and_a_fixed_one_replays_once(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    """Bad JSON, wrong shape and a row ClickHouse refuses end in the DLQ with all headers while the
    good rows land (a sample of the wrong value type is rejected alone, not dead-lettered); replayed
    after the fix the refused row lands, twice: no change."""
    settings = processor_settings(kafka_settings, processor_fault_hooks=True)
    log = tmp_path / "processor.log"
    await prepare(settings)
    await produce(settings, settings.topic_points, [(f"s/{p}".encode(), _point(p)) for p in POINTS])
    proc = start_processor(settings, log)
    try:
        await fault(settings, "reject", above="1000000")
        batch = [good(0), good(1), BAD_JSON, good(2), WRONG_SHAPE, POISON, good(3), WRONG_VALUE, good(4)]
        await produce(settings, settings.topic_samples, batch)
        await wait_consumed(settings, [proc])
        await fault(settings, "clear")
    finally:
        assert stop(proc) == 0, log.read_text()[-3000:]

    letters = await read_all(settings, settings.topic_dlq)
    by_stage = {h["stage"]: (key, value, h) for key, value, h, _ in letters}
    assert len(letters) == 3
    assert sorted(h["stage"] for _, _, h, _ in letters) == ["decode", "decode", "insert"]
    for key, value, headers, _ in letters:
        assert set(headers) >= HEADERS, headers
        assert headers["source_topic"] == settings.topic_samples and headers["attempts"] == "1"
        assert (key, value) in {BAD_JSON, WRONG_SHAPE, POISON}
    assert by_stage["insert"][:2] == POISON and by_stage["insert"][2]["error_class"] == "SinkPermanentError"
    assert rows(settings) == GOOD_ROWS

    listed = await asyncio.to_thread(streamer, settings, "dlq", "list")
    assert listed.returncode == 0, listed.stderr
    assert "3 dead letters" in listed.stdout and "RecordDecodeError=2, SinkPermanentError=1" in listed.stdout

    await replay_once(settings, log)
    after_one = rows(settings)
    assert after_one == sorted([*GOOD_ROWS, POISON_ROW])
    await replay_once(settings, log)
    assert rows(settings) == after_one
    assert len(await read_all(settings, settings.topic_dlq)) == 3  # replays landed, none failed again


def _point(name: str) -> bytes:
    return orjson.dumps({"site": "s", "point": name, "collect_enabled": True, "updated_at_ms": START_MS})
