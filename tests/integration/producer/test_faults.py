"""API faults: retried 5xx and 429 change nothing; a 401 fails its site alone, clearly."""

from __future__ import annotations

import asyncio
import sys

import pytest

from streamer.ace.client import AceClient
from streamer.ace.weather import WEATHER_POINTS
from streamer.models import SyncState
from streamer.producer.context import fixed_clock
from streamer.producer.runner import open_producer, run_cycle
from streamer.settings import Settings
from streamer.sim.config import FaultConfig, SimConfig
from streamer.sim.model import expected
from streamer.sim.server import SimServer
from streamer.times import to_ms
from tests.integration.producer.helpers import child_env, compacted, distinct_samples, read_topic, summary
from tests.integration.producer.test_cycle import producer_settings

pytestmark = pytest.mark.kafka

NOW = to_ms("2024-03-01T12:00:00Z")
HOUR = 3_600_000
SITES = ("site_a", "site_b")


async def test_5xx_and_429_give_the_fault_free_result(kafka_settings: Settings) -> None:
    """With 20 % 5xx and some 429s, ace.samples and ace.points hold exactly the fault-free content."""
    faults = FaultConfig(rate_5xx=0.2, rate_429=0.05, retry_after_s=1, seed=5)
    config = SimConfig(sites=SITES, points=1500, seed=5, faults=faults)
    async with SimServer(config) as server:
        settings = producer_settings(
            kafka_settings, server.url, sites=list(SITES), ace_page_size=10_000, ace_max_attempts=8
        )
        async with (
            AceClient(settings) as client,
            open_producer(settings, client, clock=fixed_clock(NOW)) as ctx,
        ):
            outcomes = await run_cycle(ctx, list(SITES))
        assert [o.ok for o in outcomes] == [True, True], outcomes
        assert server.state.faults.counts["5xx"] > 5 and server.state.faults.counts["429"] > 0
        enabled = {
            s: [p["name"] for p in server.state.point_items(s) if p["collect_enabled"] is not False]
            for s in SITES
        }
    samples = distinct_samples(await read_topic(settings, settings.topic_samples))
    for site in SITES:
        assert summary(site, samples[site]) == expected(config, site, NOW - HOUR, NOW)["all"]
    points = compacted(await read_topic(settings, settings.topic_points))
    assert set(points) == {
        f"{s}/{p}".encode() for s in SITES for p in [*enabled[s], *WEATHER_POINTS.values()]
    }


async def test_unauthorized_site_fails_alone_with_clear_message(kafka_settings: Settings) -> None:
    """A 401 for one site: `producer --once` exits non-zero naming that site, the other site completes."""
    config = SimConfig(
        sites=SITES, points=800, seed=9, faults=FaultConfig(unauthorized_sites=frozenset({"site_b"}))
    )
    async with SimServer(config) as server:
        settings = producer_settings(kafka_settings, server.url, sites=list(SITES), log_level="warning")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "streamer.cli", "producer", "--once", "--now", str(NOW),
            env=child_env(settings), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 1
    failed = [line for line in stderr.decode().splitlines() if line.startswith("streamer producer:")]
    assert len(failed) == 1 and "site site_b failed: AceAuthError" in failed[0], stderr.decode()
    assert "dev-token" not in stderr.decode()
    samples = distinct_samples(await read_topic(settings, settings.topic_samples))
    assert set(samples) == {"site_a"}
    assert summary("site_a", samples["site_a"]) == expected(config, "site_a", NOW - HOUR, NOW)["all"]
    sync = compacted(await read_topic(settings, settings.topic_sync))
    assert {k: SyncState.model_validate_json(v).watermark_ms for k, v in sync.items()} == {b"site_a": NOW}
