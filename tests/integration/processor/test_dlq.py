"""Criterion 4: poison records reach the DLQ with every header, good ones around them land, and a
dead letter replayed after the fix lands once (twice: no change)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

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
                (await client.post(url, params=params, json={}, timeout=10)).raise_for_status()
                return
            except httpx.TransportError:
                await asyncio.sleep(0.2)
    raise AssertionError(f"{url} unreachable")


def rows(settings: Settings) -> list[list[object]]:
    db = settings.clickhouse_database
    sql = f"SELECT point, toUnixTimestamp64Milli(ts), value FROM {db}.timeseries_raw FINAL ORDER BY point, ts"
    return clickhouse(settings, sql)


def rollups(settings: Settings) -> list[list[list[Any]]]:
    """Each rollup view's rows, then the same GROUP BY over timeseries_raw FINAL, side by side."""
    db = settings.clickhouse_database
    out = []
    for view, fn in (("rollup_5m_v", "toStartOfFiveMinutes"), ("rollup_1h_v", "toStartOfHour")):
        out.append(
            clickhouse(settings, f"SELECT point, bucket, count, sum, min, max FROM {db}.{view} ORDER BY 1, 2")
        )
        out.append(
            clickhouse(
                settings,
                f"SELECT point, {fn}(ts) AS b, count(), sum(value), min(value), max(value) "
                f"FROM {db}.timeseries_raw FINAL GROUP BY point, b ORDER BY 1, 2",
            )
        )
    return out


async def replay_once(settings: Settings, log: Path, *more: str) -> None:
    proc = start_processor(settings, log)
    try:
        done = await asyncio.to_thread(
            streamer, settings, "dlq", "replay", "--error-class", "SinkPermanentError", *more
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
    by_5m, raw_5m, by_1h, raw_1h = rollups(settings)  # the replay went through the sink's recompute
    assert by_5m == raw_5m and by_1h == raw_1h
    assert sum(int(r[2]) for r in by_1h) == len(GOOD_ROWS) + 1
    await replay_once(settings, log, "--again")  # a replayed letter is replayed again only when asked
    assert rows(settings) == after_one
    assert len(await read_all(settings, settings.topic_dlq)) == 3  # replays landed, none failed again


def _point(name: str) -> bytes:
    return orjson.dumps({"site": "s", "point": name, "collect_enabled": True, "updated_at_ms": START_MS})


POISON_2 = record("p4", [["2024-01-01T00:07:00Z", 7e6]])


def dlq(settings: Settings, *args: str) -> tuple[int, str, str]:
    done = streamer(settings, "dlq", *args)
    return done.returncode, done.stdout, done.stderr


async def test_replaying_letters_that_fail_again_converges(kafka_settings: Settings, tmp_path: Path) -> None:
    """Three poison records replayed again and again while their cause stays: ace.dlq keeps three records
    and the attempts count on in ace.dlq_state; decode letters need --force, replayed ones --again; a
    filter matching nothing says so; after the fix they land once; ack and purge close the letters."""
    settings = processor_settings(kafka_settings, processor_fault_hooks=True)
    log = tmp_path / "processor.log"
    await prepare(settings)
    await produce(settings, settings.topic_points, [(f"s/{p}".encode(), _point(p)) for p in POINTS])
    proc = start_processor(settings, log)
    try:
        await fault(settings, "reject", above="1000000")
        await produce(settings, settings.topic_samples, [good(0), BAD_JSON, POISON, POISON_2])
        await wait_consumed(settings, [proc])
        assert len(await read_all(settings, settings.topic_dlq)) == 3

        code, out, err = await asyncio.to_thread(dlq, settings, "replay")
        assert code == 0 and "replayed 2 of 3 matching" in out
        assert "cannot succeed without a fix (RecordDecodeError=1)" in err
        await wait_consumed(settings, [proc])
        code, out, err = await asyncio.to_thread(dlq, settings, "replay")
        assert (
            code == 0 and "replayed 0 of 3 matching" in out and "skipped 2 letter(s) replayed before" in err
        )
        code, out, _ = await asyncio.to_thread(dlq, settings, "replay", "--again", "--force")
        assert code == 0 and "replayed 3 of 3 matching" in out
        await wait_consumed(settings, [proc])
        assert len(await read_all(settings, settings.topic_dlq)) == 3  # failed again, not appended again

        code, out, _ = await asyncio.to_thread(dlq, settings, "list")
        assert "3 dead letters: 3 open (never replayed 0, replayed 0, failed again 3)" in out, out
        assert "most attempts 3" in out
        code, _, err = await asyncio.to_thread(dlq, settings, "replay", "--error-class", "Nope")
        assert code == 1 and "no dead letter matched" in err and "SinkPermanentError=2" in err

        await fault(settings, "clear")
        args = ("replay", "--again", "--error-class", "SinkPermanentError")
        code, out, _ = await asyncio.to_thread(dlq, settings, *args)
        assert code == 0 and "replayed 2 of 2 matching" in out
        await wait_consumed(settings, [proc])
    finally:
        assert stop(proc) == 0, log.read_text()[-3000:]
    landed = [["p0", START_MS + m * MINUTE, float(m)] for m in range(5)]
    assert rows(settings) == sorted(
        [*landed, ["p0", START_MS + 9 * MINUTE, 5e6], ["p4", START_MS + 7 * MINUTE, 7e6]]
    )
    assert len(await read_all(settings, settings.topic_dlq)) == 3

    code, out, _ = await asyncio.to_thread(dlq, settings, "ack", "--error-class", "RecordDecodeError")
    assert code == 0 and "acknowledged 1 of 1" in out
    code, out, _ = await asyncio.to_thread(dlq, settings, "list")
    assert "3 dead letters: 2 open (never replayed 0, replayed 2, failed again 0), acknowledged 1" in out, out
    code, _, err = await asyncio.to_thread(dlq, settings, "purge")
    assert code == 2 and "--all" in err
    code, out, err = await asyncio.to_thread(dlq, settings, "purge", "--all")
    assert code == 0 and "purged 2 of 3 matching" in out and "partition 0 below offset 3" in out, out + err
    assert await read_all(settings, settings.topic_dlq) == []
    code, out, _ = await asyncio.to_thread(dlq, settings, "list")
    assert out.strip().endswith("empty")
