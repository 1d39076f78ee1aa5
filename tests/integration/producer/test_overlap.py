"""An incremental window publishes only its overlap's new and changed samples, and the whole overlap
whenever what it knows could be stale (a points change, another worker, the setting off)."""

from __future__ import annotations

from email.utils import formatdate
from typing import Any

import httpx
import orjson
import pytest

from streamer.ace.client import AceClient
from streamer.producer.context import ProducerContext
from streamer.producer.runner import open_producer, run_cycle
from streamer.settings import Settings
from streamer.times import ms_to_iso, to_ms
from tests.integration.producer.helpers import read_topic
from tests.integration.producer.test_clock import ApiWithClock
from tests.integration.producer.test_cycle import producer_settings

pytestmark = pytest.mark.kafka

SITE = "site_a"
MINUTE = 60_000
OVERLAP_S = 600
START = to_ms("2024-03-01T12:00:30Z")

Sample = tuple[str, int, Any]  # point, time (ms), value


class ChangingApi(ApiWithClock):
    """A sample a minute per point, whose points, values and late uploads a test changes between cycles."""

    def __init__(self, now_ms: int) -> None:
        super().__init__(now_ms)
        self.points = [f"{SITE}/p{i}" for i in range(5)]
        self.interval: int | None = None  # collect_interval of every point (a metadata change)
        self.values: dict[tuple[str, int], Any] = {}  # corrections: (point, time) → value
        self.late: dict[tuple[str, int], Any] = {}  # uploaded late: (point, time) → value

    def samples(self, start: int, end: int) -> list[Sample]:
        first = -(-start // MINUTE) * MINUTE
        every = {(p, t): t // MINUTE % 1000 for t in range(first, end, MINUTE) for p in self.points}
        every |= {key: v for key, v in self.late.items() if start <= key[1] < end}
        every |= {key: v for key, v in self.values.items() if key in every}
        return sorted((p, t, v) for (p, t), v in every.items())

    def handler(self, request: httpx.Request) -> httpx.Response:
        now = self.now_ms()
        headers = {"date": formatdate(now / 1000, usegmt=True)}
        if request.url.path.endswith("/configured_points"):
            items = [{"name": p, "collect_interval": self.interval} for p in self.points]
            body: Any = {"page": 1, "pages": 1, "per_page": 500, "total": len(items), "items": items}
        else:
            start = to_ms(request.url.params["start_time"])
            end = min(to_ms(request.url.params["end_time"]), now)
            samples = [{"name": p, "time": ms_to_iso(t), "value": v} for p, t, v in self.samples(start, end)]
            body = {"point_samples": samples, "next_cursor": None, "has_more": False}
        return httpx.Response(200, json=body, headers=headers)


def _settings(kafka_settings: Settings, **extra: Any) -> Settings:
    return producer_settings(
        kafka_settings, "https://ace.test/api", sites=[SITE], weather_enabled=False, overlap_s=OVERLAP_S,
        ace_clock_margin_s=0.0, points_refresh_s=0.001, **extra,
    )  # fmt: skip


async def _cycle(ctx: ProducerContext) -> str:
    """One cycle of the site; returns the sync id of its incremental window."""
    assert [o.ok for o in await run_cycle(ctx, [SITE])] == [True]
    return ctx.states[SITE].last_sync_id


async def _published(settings: Settings, sync_id: str) -> list[Sample]:
    """The samples of one window's records in ace.samples, each as often as published."""
    out: list[Sample] = []
    for _, value, _ in await read_topic(settings, settings.topic_samples):
        record = orjson.loads(value or b"")
        if record["sync_id"] == sync_id:
            out += [(record["point"], to_ms(t), v) for t, v in record["samples"]]
    return sorted(out)


def _client(settings: Settings, api: ChangingApi) -> AceClient:
    return AceClient(settings, transport=httpx.MockTransport(api.handler), wall_clock=api.wall_s)


async def test_the_overlap_publishes_only_late_and_corrected_samples(kafka_settings: Settings) -> None:
    """After a window, the next one publishes its fresh samples, a sample uploaded late into the overlap
    and corrected values (also -1 to -2, which CPython hashes alike), and nothing else it re-read."""
    api = ChangingApi(START)
    settings = _settings(kafka_settings)
    p0, p1, p2 = api.points[:3]
    async with _client(settings, api) as client, open_producer(settings, client, clock=api.now_ms) as ctx:
        api.values[(p2, START - 3 * MINUTE - 30_000)] = -1  # the minute before START - 3 min
        await _cycle(ctx)
        watermark = ctx.states[SITE].watermark_ms
        late = (p0, watermark - 5 * MINUTE + 1_234)
        corrected = (p1, (watermark - 2 * MINUTE) // MINUTE * MINUTE)
        api.late[late] = 7.5
        api.values[corrected] = "corrected"
        api.values[(p2, START - 3 * MINUTE - 30_000)] = -2
        api.jump(2 * MINUTE)
        second = await _cycle(ctx)
        end = ctx.states[SITE].watermark_ms
    changed = [(p0, late[1], 7.5), (*corrected, "corrected"), (p2, START - 3 * MINUTE - 30_000, -2)]
    assert all(watermark - OVERLAP_S * 1000 <= t < watermark for _, t, _ in changed)
    assert await _published(settings, second) == sorted(api.samples(watermark, end) + changed)


async def test_a_points_change_publishes_the_next_overlap_whole(kafka_settings: Settings) -> None:
    """A refresh that published a point change (a new collect_interval) makes the next window publish
    every sample of its overlap again: the processor may have judged the earlier ones by old points."""
    api = ChangingApi(START)
    settings = _settings(kafka_settings)
    async with _client(settings, api) as client, open_producer(settings, client, clock=api.now_ms) as ctx:
        await _cycle(ctx)
        first = ctx.states[SITE].watermark_ms
        api.jump(2 * MINUTE)
        unchanged = await _cycle(ctx)
        second = ctx.states[SITE].watermark_ms
        api.interval = 60
        api.jump(2 * MINUTE)
        changed = await _cycle(ctx)
        third = ctx.states[SITE].watermark_ms
    assert await _published(settings, unchanged) == api.samples(first, second)
    assert await _published(settings, changed) == api.samples(second - OVERLAP_S * 1000, third)


@pytest.mark.parametrize("skip", [True, False])
async def test_a_window_without_what_the_last_one_read_publishes_its_overlap_whole(
    kafka_settings: Settings, skip: bool
) -> None:
    """A worker that did not read the previous window itself (restarted, or the site handed over) has
    nothing to compare with, and with the setting off every overlap is published whole."""
    api = ChangingApi(START)
    settings = _settings(kafka_settings, overlap_skip_unchanged=skip)
    async with _client(settings, api) as client, open_producer(settings, client, clock=api.now_ms) as ctx:
        await _cycle(ctx)
        first = ctx.states[SITE].watermark_ms
    api.jump(2 * MINUTE)
    async with _client(settings, api) as client, open_producer(settings, client, clock=api.now_ms) as ctx:
        assert ctx.states[SITE].watermark_ms == first
        after_restart = await _cycle(ctx)
        second = ctx.states[SITE].watermark_ms
        api.jump(2 * MINUTE)
        next_one = await _cycle(ctx)
        third = ctx.states[SITE].watermark_ms
    assert await _published(settings, after_restart) == api.samples(first - OVERLAP_S * 1000, second)
    overlap_start = second if skip else second - OVERLAP_S * 1000
    assert await _published(settings, next_one) == api.samples(overlap_start, third)
