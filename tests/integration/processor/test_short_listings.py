"""Short configured-points pages end to end: no tombstone, no dropped sample, ClickHouse exact."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from streamer.ace.client import AceClient
from streamer.producer.runner import open_producer, run_cycle
from streamer.settings import Settings
from streamer.sim.config import FaultConfig, SimConfig
from streamer.sim.server import SimServer
from streamer.times import to_ms
from tests.integration.processor.helpers import (
    check,
    child_env,
    prepare,
    processor_settings,
    start_processor,
    stop,
    wait_consumed,
    want,
)
from tests.integration.producer.helpers import compacted, read_topic
from tests.integration.producer.test_cycle import producer_settings

pytestmark = pytest.mark.kafka

# No unconfigured or disabled points: every sample published is one the processor must keep.
CONFIG = SimConfig(
    sites=("site_01", "site_02"), points=300, seed=6, extra_share=0.0, disabled_share=0.0,
    faults=FaultConfig(seed=12, max_streak=1000),
)  # fmt: skip
NOW = to_ms("2024-03-01T12:00:00Z")
STEP = 10 * 60_000
CYCLES = 5


def _refresh_failures(site: str) -> float:
    labels = {"site": site, "reason": "list_mismatch"}
    return REGISTRY.get_sample_value("streamer_points_refresh_failures_total", labels) or 0.0


def _dropped(settings: Settings) -> float:
    """Samples the running processor dropped as not collected, every reason, from its /metrics."""
    text = httpx.get(f"http://127.0.0.1:{settings.processor_web_port}/metrics", timeout=10).text
    families = [f for f in text_string_to_metric_families(text) if f.name == "streamer_samples_dropped"]
    return sum(s.value for f in families for s in f.samples if s.name.endswith("_total"))


async def _switch_short_pages(settings: Settings, url: str, share: float) -> None:
    """`streamer sim faults --short-points-pages SHARE` against the running simulator."""
    root = url.removesuffix("/api")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streamer.cli", "sim", "faults",
        "--url", root, "--short-points-pages", str(share),
        env=child_env(settings), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert f'"short_points_pages":{share}' in out.decode()


async def test_short_points_pages_tombstone_nothing_and_drop_nothing(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    """After a whole first refresh, 30 % of points pages come back short for four more cycles (refreshed
    every cycle): the refreshes fail and are counted, ace.points holds no tombstone, the processor
    drops no sample, and ClickHouse holds exactly expected() for the synced span."""
    settings = processor_settings(kafka_settings)
    await prepare(settings)
    clock = [NOW]
    async with SimServer(CONFIG) as server:
        settings = producer_settings(
            settings, server.url, sites=list(CONFIG.sites), weather_enabled=False,
            ace_points_page_size=50, points_refresh_s=0.001,
        )  # fmt: skip
        before = {site: _refresh_failures(site) for site in CONFIG.sites}
        async with (
            AceClient(settings) as client,
            open_producer(settings, client, clock=lambda: clock[0]) as ctx,
        ):
            for cycle in range(CYCLES):
                if cycle == 1:
                    await _switch_short_pages(settings, server.url, 0.3)
                outcomes = await run_cycle(ctx, list(CONFIG.sites))
                assert [o.ok for o in outcomes] == [True, True], outcomes
                clock[0] += STEP
        shorts = server.state.faults.counts["short_points_page"]
    assert shorts > 0
    assert all(_refresh_failures(site) > before[site] for site in CONFIG.sites)
    points = await read_topic(settings, settings.topic_points)
    assert [key for key, value, _ in points if value is None] == []
    assert len(compacted(points)) == sum(len(server.state.point_items(s)) for s in CONFIG.sites)

    log = tmp_path / "processor.log"
    proc = start_processor(settings, log)
    try:
        await wait_consumed(settings, [proc], timeout=90)
        dropped = _dropped(settings)
    finally:
        assert stop(proc) == 0, log.read_text()[-3000:]
    assert dropped == 0
    start, end = NOW - settings.initial_lookback_s * 1000, NOW + (CYCLES - 1) * STEP
    assert check(settings) == want(CONFIG, start, end)
