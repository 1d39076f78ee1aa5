"""sync_window and Kafka's acknowledgements: the watermark waits for every delivery of its window."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka.errors import KafkaTimeoutError

from streamer.ace.pagination import TimeseriesPage
from streamer.errors import KafkaTransientError
from streamer.models import SyncRun, SyncState
from streamer.producer.context import ProducerContext, fixed_clock
from streamer.producer.sync import FULL_GC_SAMPLES, sync_window
from streamer.producer.windows import Window
from tests.isolation import isolated_settings

NOW = 1_700_000_000_000
WINDOW = Window(NOW - 3_600_000, NOW, "incremental")


class _Builder:
    def __init__(self) -> None:
        self.records: list[tuple[bytes, bytes | None]] = []

    def append(self, *, key: bytes, value: bytes | None, timestamp: int | None) -> object:
        self.records.append((key, value))
        return object()

    def record_count(self) -> int:
        return len(self.records)


class ControlledProducer:
    """Stands in for AIOKafkaProducer: batch deliveries complete only when the test says so."""

    def __init__(self) -> None:
        self.deliveries: list[asyncio.Future[Any]] = []
        self.sent: list[tuple[str, bytes, bytes | None]] = []

    def create_batch(self) -> _Builder:
        return _Builder()

    async def send_batch(self, builder: _Builder, topic: str, *, partition: int) -> asyncio.Future[Any]:
        delivery: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.deliveries.append(delivery)
        return delivery

    async def send_and_wait(self, topic: str, value: bytes | None = None, key: bytes = b"") -> None:
        self.sent.append((topic, key, value))

    def topics_sent(self) -> list[str]:
        return [topic for topic, _, _ in self.sent]


@dataclass
class _Stats:
    api_calls: int = 0


class OnePageApi:
    """An ACE API whose window is one page of samples for two points."""

    async def list_sites(self) -> list[Any]:
        return []

    async def list_points(self, site: str) -> list[Any]:
        return []

    async def get_weather(self, site: str) -> list[Any]:
        return []

    def site_stats(self, site: str) -> _Stats:
        return _Stats()

    async def iter_timeseries(self, site: str, start_ms: int, end_ms: int) -> AsyncIterator[TimeseriesPage]:
        samples = [
            {"name": f"{site}/p{i % 2}", "time": f"2023-11-14T21:{i:02d}:00Z", "value": i} for i in range(20)
        ]
        yield TimeseriesPage(number=1, samples=samples, next_cursor=None)


def _context(tmp_path: Path) -> tuple[ProducerContext, ControlledProducer]:
    settings = isolated_settings("tsync", tmp_path / "data", samples_partitions=4)
    producer = ControlledProducer()
    ctx = ProducerContext(settings, OnePageApi(), producer, clock=fixed_clock(NOW))  # type: ignore[arg-type]
    ctx.partitions[settings.topic_samples] = [0, 1, 2, 3]
    return ctx, producer


def _new_state() -> SyncState:
    return SyncState(site="s", watermark_ms=WINDOW.end_ms, last_sync_id="id", updated_at_ms=NOW)


async def _until_deliveries(producer: ControlledProducer) -> None:
    for _ in range(200):
        if producer.deliveries:
            return
        await asyncio.sleep(0)
    raise AssertionError("the window handed no batch to the producer")


async def test_watermark_is_not_written_while_a_delivery_is_pending(tmp_path: Path) -> None:
    """ace.sync gets the new state only after every batch of the window is acknowledged."""
    ctx, producer = _context(tmp_path)
    task = asyncio.create_task(sync_window(ctx, "s", WINDOW, "id", weather=False, state=_new_state()))
    await _until_deliveries(producer)
    for _ in range(50):
        await asyncio.sleep(0)
    assert not task.done()
    assert ctx.settings.topic_sync not in producer.topics_sent()
    assert "s" not in ctx.states
    for delivery in producer.deliveries:
        delivery.set_result(None)
    run = await asyncio.wait_for(task, 5)
    assert run.status == "ok" and run.samples_published == 20
    assert producer.topics_sent() == [ctx.settings.topic_sync, ctx.settings.topic_sync_runs]
    assert ctx.states["s"].watermark_ms == WINDOW.end_ms


async def test_a_failed_delivery_fails_the_window_and_keeps_the_state(tmp_path: Path) -> None:
    """A refused batch fails the window: no new watermark, the old state kept, a failed sync run recorded."""
    ctx, producer = _context(tmp_path)
    old = SyncState(site="s", watermark_ms=WINDOW.start_ms, updated_at_ms=NOW - 1)
    ctx.book.recover(states={"s": old})
    task = asyncio.create_task(sync_window(ctx, "s", WINDOW, "id", weather=False, state=_new_state()))
    await _until_deliveries(producer)
    producer.deliveries[0].set_exception(KafkaTimeoutError())
    for delivery in producer.deliveries[1:]:
        delivery.set_result(None)
    with pytest.raises(KafkaTransientError):
        await asyncio.wait_for(task, 5)
    assert ctx.states["s"] is old
    assert producer.topics_sent() == [ctx.settings.topic_sync_runs]
    run = SyncRun.model_validate(orjson.loads(producer.sent[0][2] or b""))
    assert run.status == "failed" and run.records_published == 0
    assert run.error is not None and "KafkaTransientError" in run.error


class AckingProducer(ControlledProducer):
    """Acknowledges every batch at once."""

    async def send_batch(self, builder: _Builder, topic: str, *, partition: int) -> asyncio.Future[Any]:
        delivery = await super().send_batch(builder, topic, partition=partition)
        delivery.set_result(None)
        return delivery


class BigPageApi(OnePageApi):
    """A window of one page of ``FULL_GC_SAMPLES`` samples."""

    async def iter_timeseries(self, site: str, start_ms: int, end_ms: int) -> AsyncIterator[TimeseriesPage]:
        time = "2023-11-14T21:00:00Z"
        samples = [{"name": f"{site}/p{i % 50}", "time": time, "value": i} for i in range(FULL_GC_SAMPLES)]
        yield TimeseriesPage(number=1, samples=samples, next_cursor=None)


async def test_full_collections_are_paid_per_samples_fetched_not_per_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full GC pass costs in proportion to everything the process holds (every site's points table),
    so one per window made a cycle over N sites cost N² (500 sites: ~40 CPU-s a cycle). Small windows
    share one; a window that fetched FULL_GC_SAMPLES samples (a backfill's big pages) has its own."""
    full: list[int] = []
    collect = gc.collect

    def counting(generation: int = 2) -> int:
        if generation == 2:
            full.append(1)
        return collect(0)

    monkeypatch.setattr(gc, "collect", counting)
    ctx, _ = _context(tmp_path)
    ctx.producer = AckingProducer()
    for i in range(100):
        await sync_window(ctx, f"s{i}", WINDOW, f"id{i}", weather=False, state=None)
    assert len(full) == 0
    ctx.client = BigPageApi()  # type: ignore[assignment]
    await sync_window(ctx, "big", WINDOW, "big", weather=False, state=None)
    assert len(full) == 1
