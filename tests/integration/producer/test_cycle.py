"""One producer cycle against the simulator and the real broker: every sample, every point, in Kafka."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from pydantic import SecretStr

from streamer.ace.client import AceClient
from streamer.ace.weather import WEATHER_POINTS
from streamer.errors import AceRetriesExhausted
from streamer.models import SyncRun, SyncState
from streamer.producer.context import fixed_clock
from streamer.producer.runner import discover_sites, open_producer, run_cycle
from streamer.producer.sync import refresh_points
from streamer.settings import Settings
from streamer.sim.config import SimConfig
from streamer.sim.model import expected
from streamer.sim.server import SimServer
from streamer.times import to_ms
from tests.integration.producer.helpers import compacted, distinct_samples, read_topic, summary

pytestmark = pytest.mark.kafka

SITES = ("site_a", "site_b")
NOW = to_ms("2024-03-01T12:00:00Z")
HOUR = 3_600_000


def producer_settings(settings: Settings, url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "ace_base_url": url,
        "ace_token": SecretStr("dev-token"),
        "sites": [],
        "initial_lookback_s": 3600,
        "max_window_s": 3600,
        "ace_backoff_base_s": 0.01,
        "ace_backoff_max_s": 0.05,
    }
    values.update(overrides)
    return settings.model_copy(update=values)


async def test_one_cycle_publishes_every_sample_and_point(kafka_settings: Settings) -> None:
    """One cycle over two 4,583-point sites: the distinct samples in ace.samples are exactly the
    simulator's for the hour, ace.points holds exactly the enabled points plus weather, the watermarks
    are the window end; disabling a point yields exactly its tombstone on the next refresh."""
    config = SimConfig(sites=SITES, seed=7)
    async with SimServer(config) as server:
        settings = producer_settings(kafka_settings, server.url)
        async with (
            AceClient(settings) as client,
            open_producer(settings, client, clock=fixed_clock(NOW)) as ctx,
        ):
            sites = await discover_sites(ctx)
            assert sorted(sites) == list(SITES)
            outcomes = await run_cycle(ctx, sites)
            assert [(o.site, o.ok, o.windows) for o in sorted(outcomes, key=lambda o: o.site)] == [
                (s, True, 1) for s in SITES
            ]

            records = await read_topic(settings, settings.topic_samples)
            samples = distinct_samples(records)
            for site in SITES:
                assert summary(site, samples[site]) == expected(config, site, NOW - HOUR, NOW)["all"]
                served = {w.point for w in await client.get_weather(site)}
                weather = {orjson.loads(v or b"")["point"] for k, v, _ in records if k and b"/weather." in k}
                assert served and served <= weather

            points_before = await read_topic(settings, settings.topic_points)
            enabled = {
                site: [p["name"] for p in server.state.point_items(site) if p["collect_enabled"] is not False]
                for site in SITES
            }
            wanted = {f"{s}/{p}".encode() for s in SITES for p in [*enabled[s], *WEATHER_POINTS.values()]}
            assert set(compacted(points_before)) == wanted

            sync = {
                k.decode(): SyncState.model_validate_json(v)
                for k, v in compacted(await read_topic(settings, settings.topic_sync)).items()
            }
            assert {s: st.watermark_ms for s, st in sync.items()} == dict.fromkeys(SITES, NOW)
            runs = [
                SyncRun.model_validate_json(v or b"")
                for _, v, _ in await read_topic(settings, settings.topic_sync_runs)
            ]
            assert sorted((r.site, r.status, r.kind, r.window_start_ms, r.window_end_ms) for r in runs) == [
                (s, "ok", "incremental", NOW - HOUR, NOW) for s in SITES
            ]

            victim = enabled["site_a"][5]
            server.state.set_enabled("site_a", [victim], False)
            assert await refresh_points(ctx, "site_a") == 1
            points_after = await read_topic(settings, settings.topic_points)
            assert len(points_after) == len(points_before) + 1
            key = f"site_a/{victim}".encode()
            assert [v is None for k, v, _ in points_after if k == key] == [False, True]
            assert set(compacted(points_after)) == wanted - {f"site_a/{victim}".encode()}


async def test_records_respect_cap_and_share_partition_with_points(kafka_settings: Settings) -> None:
    """Records carry at most record_max_samples pairs, the sync id of their window, and land in the
    same partition as their point's ace.points record (co-partitioning)."""
    config = SimConfig(sites=("site_a",), points=300, seed=3, order="grouped")
    async with SimServer(config) as server:
        settings = producer_settings(kafka_settings, server.url, record_max_samples=25, weather_enabled=False)
        async with (
            AceClient(settings) as client,
            open_producer(settings, client, clock=fixed_clock(NOW)) as ctx,
        ):
            assert [o.ok for o in await run_cycle(ctx, ["site_a"])] == [True]
        records = await read_topic(settings, settings.topic_samples)
        point_partition = {k: p for k, _, p in await read_topic(settings, settings.topic_points)}
    bodies = [orjson.loads(v or b"") for _, v, _ in records]
    assert max(len(b["samples"]) for b in bodies) == 25
    assert {b["sync_id"] for b in bodies} == {bodies[0]["sync_id"]}
    assert bodies[0]["sync_id"].startswith(f"site_a:{NOW - HOUR}-{NOW}:")
    shared = [(k, p) for k, _, p in records if k in point_partition]
    assert shared and all(point_partition[k] == p for k, p in shared)
    assert (
        summary("site_a", distinct_samples(records)["site_a"])
        == expected(config, "site_a", NOW - HOUR, NOW)["all"]
    )


class WeatherDown:
    """The real client, except that the weather endpoint has failed for good."""

    def __init__(self, client: AceClient) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def get_weather(self, site: str) -> list[Any]:
        raise AceRetriesExhausted(f"GET /sites/{site}/weather: gave up after 3 attempts")


async def test_weather_failure_does_not_fail_the_site(kafka_settings: Settings) -> None:
    """With the weather endpoint down, the site's samples are all published, its watermark moves,
    and the window's SyncRun counts the error."""
    config = SimConfig(sites=("site_a",), points=300, seed=2)
    async with SimServer(config) as server:
        settings = producer_settings(kafka_settings, server.url, sites=["site_a"])
        async with AceClient(settings) as real:
            client = WeatherDown(real)
            async with open_producer(settings, client, clock=fixed_clock(NOW)) as ctx:
                assert [o.ok for o in await run_cycle(ctx, ["site_a"])] == [True]
    records = await read_topic(settings, settings.topic_samples)
    assert not [k for k, _, _ in records if k and b"/weather." in k]
    assert (
        summary("site_a", distinct_samples(records)["site_a"])
        == expected(config, "site_a", NOW - HOUR, NOW)["all"]
    )
    sync = compacted(await read_topic(settings, settings.topic_sync))
    assert SyncState.model_validate_json(sync[b"site_a"]).watermark_ms == NOW
    (run,) = [
        SyncRun.model_validate_json(v or b"")
        for _, v, _ in await read_topic(settings, settings.topic_sync_runs)
    ]
    assert (run.status, run.errors) == ("ok", 1)
