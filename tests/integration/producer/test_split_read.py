"""An incremental window of more than one page is read fresh samples first, then its overlap."""

from __future__ import annotations

from email.utils import formatdate
from typing import Any

import httpx
import orjson
import pytest

from streamer.ace.client import AceClient
from streamer.producer.runner import open_producer, run_cycle
from streamer.settings import Settings
from streamer.times import ms_to_iso, to_ms
from tests.integration.producer.helpers import distinct_samples, read_topic
from tests.integration.producer.test_clock import POINTS, SITE, ApiWithClock
from tests.integration.producer.test_cycle import producer_settings

pytestmark = pytest.mark.kafka

MINUTE = 60_000


class PagedApi(ApiWithClock):
    """``ApiWithClock`` with real pagination (``page_size`` samples a page, an offset as the cursor),
    sorted by point as a grouped page order has them; it records each timeseries request's span."""

    def __init__(self, now_ms: int) -> None:
        super().__init__(now_ms)
        self.spans: list[tuple[int, int]] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/configured_points"):
            return super().handler(request)
        params = request.url.params
        start, end = to_ms(params["start_time"]), to_ms(params["end_time"])
        if "cursor" not in params:
            self.spans.append((start, end))
        until = min(end, self.now_ms())
        first = -(-start // MINUTE) * MINUTE
        every = [
            {"name": p, "time": ms_to_iso(t), "value": t // MINUTE % 1000}
            for p in POINTS
            for t in range(first, until, MINUTE)
        ]
        offset, size = int(params.get("cursor", 0)), int(params["page_size"])
        more = offset + size < len(every)
        body: Any = {
            "point_samples": every[offset : offset + size],
            "next_cursor": str(offset + size) if more else None,
            "has_more": more,
        }
        return httpx.Response(200, json=body, headers={"date": formatdate(self.now_ms() / 1000, usegmt=True)})


def _settings(kafka_settings: Settings, page_size: int) -> Settings:
    return producer_settings(
        kafka_settings, "https://ace.test/api", sites=[SITE], weather_enabled=False, overlap_s=600,
        ace_clock_margin_s=0.0, ace_page_size=page_size, ace_min_page_size=min(page_size, 1_000),
    )  # fmt: skip


async def _two_cycles(settings: Settings, api: PagedApi) -> int:
    """A first window (an hour), then two minutes later the next; returns the first one's watermark."""
    async with (
        AceClient(settings, transport=httpx.MockTransport(api.handler), wall_clock=api.wall_s) as client,
        open_producer(settings, client, clock=api.now_ms) as ctx,
    ):
        assert [o.ok for o in await run_cycle(ctx, [SITE])] == [True]
        watermark = ctx.states[SITE].watermark_ms
        api.jump(2 * MINUTE)
        api.spans.clear()
        assert [o.ok for o in await run_cycle(ctx, [SITE])] == [True]
        assert ctx.states[SITE].watermark_ms > watermark
    return watermark


async def test_the_fresh_span_is_read_and_published_before_the_overlap(kafka_settings: Settings) -> None:
    """After a window of six pages, the next window asks for [watermark, now) before the overlap, and
    in every partition its fresh-only records precede those holding overlap samples; ace.samples holds
    every sample exactly as an unsplit read would."""
    api = PagedApi(to_ms("2024-03-01T12:00:30Z"))
    settings = _settings(kafka_settings, page_size=50)  # an hour of 5 points: 300 samples, 6 pages
    watermark = await _two_cycles(settings, api)
    assert api.spans[0][0] == watermark
    assert api.spans[1] == (watermark - 600_000, watermark + 1_000)
    records = await read_topic(settings, settings.topic_samples)
    second = [(orjson.loads(v or b""), partition) for _, v, partition in records]
    second = [(r, p) for r, p in second if r["sync_id"] != second[0][0]["sync_id"]]
    assert second, "the second window published nothing"
    seen_overlap: set[int] = set()
    for record, partition in second:
        times = [to_ms(t) for t, _ in record["samples"]]
        if min(times) < watermark:
            seen_overlap.add(partition)
        else:
            assert partition not in seen_overlap, "a fresh record came after the overlap's"
    fresh = {(r["point"], to_ms(t)) for r, _ in second for t, _ in r["samples"] if to_ms(t) >= watermark}
    assert fresh == {(p, t) for p, t in api.samples_before(watermark, api.now_ms()) if t >= watermark}
    first_start = to_ms("2024-03-01T12:00:30Z") - settings.initial_lookback_s * 1000
    final = max(t for _, t in fresh) + 1
    assert distinct_samples(records)[SITE] == api.samples_before(first_start, final)


async def test_a_one_page_window_is_read_in_one_request(kafka_settings: Settings) -> None:
    """When the previous window took one page, the next is not split: one request a window."""
    api = PagedApi(to_ms("2024-03-01T12:00:30Z"))
    watermark = await _two_cycles(_settings(kafka_settings, page_size=1_000), api)
    assert len(api.spans) == 1 and api.spans[0][0] == watermark - 600_000
