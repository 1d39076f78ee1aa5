"""No site stalls on one sample: values nested past orjson's limit, or larger than a record, are skipped
and counted, records stay under the broker's limit, and the window completes (real broker, simulator)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client import REGISTRY

from streamer.ace.client import AceClient
from streamer.ace.pagination import TimeseriesPage
from streamer.models import SyncRun, SyncState
from streamer.producer.context import fixed_clock
from streamer.producer.runner import open_producer, run_cycle
from streamer.settings import Settings
from streamer.sim.config import SimConfig
from streamer.sim.model import expected
from streamer.sim.server import SimServer
from streamer.times import to_ms
from tests.integration.producer.helpers import compacted, distinct_samples, read_topic, summary, ts_ms
from tests.integration.producer.test_cycle import producer_settings

pytestmark = pytest.mark.kafka

SITES = ("site_a", "site_b")
NOW = to_ms("2024-03-01T12:00:00Z")
HOUR = 3_600_000
DEEP: Any = 0
for _ in range(300):  # orjson encodes at most 254 levels
    DEEP = [DEEP]
HUGE = "h" * 1_200_000  # more than a record may hold
WIDE = "w" * 300_000  # valid, but three make a record


class HostileClient(AceClient):
    """The real client, whose pages for site_a carry hostile values on three points."""

    def __init__(self, settings: Settings, points: dict[str, Any]) -> None:
        super().__init__(settings)
        self.points = points
        self.replaced: set[tuple[str, int]] = set()  # the deep and huge samples, which cannot pass

    async def iter_timeseries(self, site: str, start_ms: int, end_ms: int) -> AsyncIterator[TimeseriesPage]:  # type: ignore[override]
        async for page in super().iter_timeseries(site, start_ms, end_ms):
            if site == "site_a":
                for sample in page.samples:  # Sample structs: the simulator's pages are well-formed
                    value = self.points.get(sample.name)
                    if callable(value):
                        value = value()
                    if value is not None:
                        sample.value = value
                        if value is not WIDE:
                            self.replaced.add((sample.name, ts_ms(sample.time)))
            yield page


async def test_deep_and_huge_values_are_skipped_and_the_site_advances(kafka_settings: Settings) -> None:
    """A point of 300-deep lists and a point of 1.2 MB strings are skipped (counted), a point of 300 kB
    strings is split into records under the limit, and every other sample is in ace.samples exactly; both
    sites' windows complete and their watermarks move."""
    config = SimConfig(sites=SITES, seed=7, points=40)
    async with SimServer(config) as server:
        settings = producer_settings(kafka_settings, server.url, weather_enabled=False)
        names = [p["name"] for p in server.state.point_items("site_a")]
        hostile = {names[0]: DEEP, names[1]: HUGE, names[2]: WIDE}
        async with (
            HostileClient(settings, hostile) as client,
            open_producer(settings, client, clock=fixed_clock(NOW)) as ctx,
        ):
            outcomes = await run_cycle(ctx, list(SITES))
            assert sorted((o.site, o.ok, o.windows) for o in outcomes) == [(s, True, 1) for s in SITES]
            assert ctx.record_max_bytes == 1_000_000

    records = await read_topic(settings, settings.topic_samples)
    assert all(len(key or b"") + len(value or b"") <= 1_000_000 for key, value, _ in records)
    wide = [orjson.loads(v or b"") for k, v, _ in records if k == f"site_a/{names[2]}".encode()]
    assert len(wide) > 1 and all(value == WIDE for r in wide for _, value in r["samples"])
    samples = distinct_samples(records)
    assert client.replaced and not client.replaced & samples["site_a"]
    whole_a = summary("site_a", samples["site_a"] | client.replaced)
    assert whole_a == expected(config, "site_a", NOW - HOUR, NOW)["all"]
    assert summary("site_b", samples["site_b"]) == expected(config, "site_b", NOW - HOUR, NOW)["all"]
    sync = {
        k.decode(): SyncState.model_validate_json(v).watermark_ms
        for k, v in compacted(await read_topic(settings, settings.topic_sync)).items()
    }
    assert sync == dict.fromkeys(SITES, NOW)
    runs = {
        r.site: r
        for r in (
            SyncRun.model_validate_json(v or b"")
            for _, v, _ in await read_topic(settings, settings.topic_sync_runs)
        )
    }
    assert runs["site_a"].status == "ok" and runs["site_a"].errors == 1  # the skipped samples, counted
    for reason in ("unencodable", "too_large"):
        labels = {"site": "site_a", "reason": reason}
        assert REGISTRY.get_sample_value("streamer_samples_malformed_total", labels) == 60
    assert runs["site_b"].status == "ok" and runs["site_b"].errors == 0


async def test_records_stay_under_a_topic_limit_read_at_start_up(kafka_settings: Settings) -> None:
    """ace.samples created with max.message.bytes=100000: the producer reads it, keeps every record
    under it (30 kB values that do not compress: three a record), and the broker takes the window."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        topic = NewTopic(kafka_settings.topic_samples, 2, 1, topic_configs={"max.message.bytes": "100000"})
        await admin.create_topics([topic])
    finally:
        await admin.close()
    config = SimConfig(sites=("site_a",), seed=3, points=10)
    async with SimServer(config) as server:
        settings = producer_settings(kafka_settings, server.url, weather_enabled=False, samples_partitions=2)
        names = [p["name"] for p in server.state.point_items("site_a")]
        async with (
            HostileClient(settings, {names[0]: lambda: secrets.token_hex(15_000)}) as client,
            open_producer(settings, client, clock=fixed_clock(NOW)) as ctx,
        ):
            outcomes = await run_cycle(ctx, ["site_a"])
            assert [(o.site, o.ok) for o in outcomes] == [("site_a", True)]
            assert ctx.record_max_bytes == 100_000 - 1024
    records = await read_topic(settings, settings.topic_samples)
    assert all(len(key or b"") + len(value or b"") <= 100_000 - 1024 for key, value, _ in records)
    samples = distinct_samples(records)
    assert summary("site_a", samples["site_a"]) == expected(config, "site_a", NOW - HOUR, NOW)["all"]
