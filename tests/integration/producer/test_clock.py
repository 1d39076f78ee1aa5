"""A producer clock ahead of the API's: windows end by the API's Date; nothing arriving later is skipped."""

from __future__ import annotations

import time
from email.utils import formatdate, parsedate_to_datetime
from typing import Any

import httpx
import pytest

from streamer.ace.client import AceClient
from streamer.models import SyncState
from streamer.producer.runner import open_producer, run_cycle
from streamer.settings import Settings
from streamer.sim.config import SimConfig
from streamer.sim.server import SimServer
from streamer.times import ms_to_iso, to_ms
from tests.integration.producer.helpers import compacted, distinct_samples, read_topic
from tests.integration.producer.test_cycle import producer_settings

pytestmark = pytest.mark.kafka

SITE = "site_a"
POINTS = [f"{SITE}/p{i}" for i in range(5)]
MINUTE = 60_000
AHEAD = 30 * MINUTE
MARGIN_S = 10.0


class ApiWithClock:
    """A small ACE API with its own clock: a sample exists only once the API's now has passed its time,
    and every answer's Date tells that now (whole seconds, as HTTP has them)."""

    def __init__(self, now_ms: int) -> None:
        self.base_ms, self.started, self.jumped_ms = now_ms, time.monotonic(), 0

    def now_ms(self) -> int:
        return self.base_ms + self.jumped_ms + round((time.monotonic() - self.started) * 1000)

    def jump(self, ms: int) -> None:
        """Let ``ms`` pass at once (for every clock that reads ``wall_s``, too)."""
        self.jumped_ms += ms

    def wall_s(self) -> float:
        """The producer host's wall clock, which time passing moves as much as the API's."""
        return time.time() + self.jumped_ms / 1000

    def handler(self, request: httpx.Request) -> httpx.Response:
        now = self.now_ms()
        headers = {"date": formatdate(now / 1000, usegmt=True)}
        if request.url.path.endswith("/configured_points"):
            items = [{"name": p} for p in POINTS]
            body: Any = {"page": 1, "pages": 1, "per_page": 500, "total": len(items), "items": items}
        else:
            start = to_ms(request.url.params["start_time"])
            end = min(to_ms(request.url.params["end_time"]), now)
            first = -(-start // MINUTE) * MINUTE
            samples = [
                {"name": p, "time": ms_to_iso(t), "value": t // MINUTE % 1000}
                for t in range(first, end, MINUTE)
                for p in POINTS
            ]
            body = {"point_samples": samples, "next_cursor": None, "has_more": False}
        return httpx.Response(200, json=body, headers=headers)

    def samples_before(self, start_ms: int, end_ms: int) -> set[tuple[str, int]]:
        first = -(-start_ms // MINUTE) * MINUTE
        return {(p, t) for t in range(first, end_ms, MINUTE) for p in POINTS}


async def test_windows_end_by_the_api_clock_and_late_arrivals_are_read(kafka_settings: Settings) -> None:
    """Producer clock 30 min ahead of the API's: each cycle's watermark stays at or before the API's
    now less the margin, and once the API's clock has moved 5 min on, the next cycle publishes the
    samples that arrived meanwhile: ace.samples holds every sample from the first window's start."""
    api = ApiWithClock(to_ms("2024-03-01T12:00:00Z"))
    settings = producer_settings(
        kafka_settings, "https://ace.test/api", sites=[SITE], weather_enabled=False,
        ace_clock_margin_s=MARGIN_S, overlap_s=600,
    )  # fmt: skip
    watermarks: list[tuple[int, int]] = []
    async with (
        AceClient(settings, transport=httpx.MockTransport(api.handler), wall_clock=api.wall_s) as client,
        open_producer(settings, client, clock=lambda: api.now_ms() + AHEAD) as ctx,
    ):
        for _ in range(2):
            assert [o.ok for o in await run_cycle(ctx, [SITE])] == [True]
            watermarks.append((ctx.states[SITE].watermark_ms, api.now_ms()))
            api.jump(5 * MINUTE)
    for watermark, api_now in watermarks:
        assert watermark <= api_now - MARGIN_S * 1000
        assert watermark >= api_now - MARGIN_S * 1000 - 5_000  # bounded, not stalled
    sync = compacted(await read_topic(settings, settings.topic_sync))
    assert SyncState.model_validate_json(sync[SITE.encode()]).watermark_ms == watermarks[-1][0]
    samples = distinct_samples(await read_topic(settings, settings.topic_samples))[SITE]
    first_start = watermarks[0][0] - settings.initial_lookback_s * 1000
    assert samples == api.samples_before(first_start, watermarks[-1][0])


async def test_against_the_simulator_windows_end_by_its_date(kafka_settings: Settings) -> None:
    """The simulator's Date is its (real) clock; a producer 1 h ahead ends its window by that Date."""
    async with SimServer(SimConfig(sites=(SITE,), points=50, seed=1)) as server:
        settings = producer_settings(kafka_settings, server.url, sites=[SITE], ace_clock_margin_s=MARGIN_S)
        async with httpx.AsyncClient() as probe:
            date = (await probe.get(f"{server.url}/_sim/health")).headers["date"]
        assert abs(parsedate_to_datetime(date).timestamp() - time.time()) < 2
        async with (
            AceClient(settings) as client,
            open_producer(settings, client, clock=lambda: time.time_ns() // 1_000_000 + 3_600_000) as ctx,
        ):
            assert [o.ok for o in await run_cycle(ctx, [SITE])] == [True]
            watermark = ctx.states[SITE].watermark_ms
    now_ms = time.time_ns() // 1_000_000
    assert now_ms - MARGIN_S * 1000 - 30_000 < watermark <= now_ms - MARGIN_S * 1000
