"""The producer's commands as an operator runs them: topics, backfill, and a graceful stop."""

from __future__ import annotations

import asyncio
import signal
import sys
import time

import pytest
from click.testing import CliRunner

from streamer.models import SyncState
from streamer.producer.cli import topics
from streamer.settings import Settings
from streamer.sim.config import FaultConfig, SimConfig
from streamer.sim.model import expected
from streamer.sim.server import SimServer
from streamer.times import to_ms
from tests.integration.producer.helpers import (
    child_env,
    compacted,
    distinct_samples,
    read_topic,
    record_count,
    summary,
)
from tests.integration.producer.test_cycle import producer_settings

pytestmark = pytest.mark.kafka

NOW = to_ms("2024-03-01T12:00:00Z")
HOUR = 3_600_000


async def streamer(settings: Settings, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streamer.cli", *args,
        env=child_env(settings), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


def test_topics_command_creates_missing_topics(kafka_settings: Settings) -> None:
    """`streamer topics` creates the six topics once; a second run finds them all."""
    runner = CliRunner()
    first = runner.invoke(topics, obj=kafka_settings)
    assert first.exit_code == 0, first.output
    names = [kafka_settings.topic_samples, kafka_settings.topic_points, kafka_settings.topic_sync]
    names += [kafka_settings.topic_sync_runs, kafka_settings.topic_dlq, kafka_settings.topic_dlq_state]
    assert sorted(first.stdout.removeprefix("created: ").strip().split(", ")) == sorted(names)
    again = runner.invoke(topics, obj=kafka_settings)
    assert again.exit_code == 0 and again.stdout.strip() == "all topics exist"


async def test_backfill_command_fills_range_without_moving_watermark_back(kafka_settings: Settings) -> None:
    """`streamer backfill` over 3 h before the watermark publishes every sample of the range in 3
    windows, and leaves the incremental watermark where it was."""
    config = SimConfig(sites=("site_a",), points=400, seed=21)
    async with SimServer(config) as server:
        settings = producer_settings(kafka_settings, server.url, sites=["site_a"], log_level="warning")
        once = await streamer(settings, "producer", "--once", "--now", str(NOW))
        assert await asyncio.wait_for(once.wait(), 60) == 0
        start, end = "2024-03-01T08:00:00Z", str(NOW - HOUR)
        proc = await streamer(settings, "backfill", "--site", "site_a", "--start", start, "--end", end)
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, stderr.decode()
    assert stdout.decode().startswith("backfill site_a: 3 windows, ")
    assert "3/3" in stderr.decode()  # the progress bar's windows column
    samples = distinct_samples(await read_topic(settings, settings.topic_samples))["site_a"]
    assert summary("site_a", samples) == expected(config, "site_a", NOW - 4 * HOUR, NOW)["all"]
    sync = compacted(await read_topic(settings, settings.topic_sync))
    assert SyncState.model_validate_json(sync[b"site_a"]).watermark_ms == NOW


async def test_sigterm_abandons_window_without_moving_watermark(kafka_settings: Settings) -> None:
    """SIGTERM during a window: the producer exits 0 promptly and the window's watermark is not written."""
    config = SimConfig(sites=("site_a",), points=600, seed=4, faults=FaultConfig(rate_slow=1.0, slow_ms=300))
    async with SimServer(config) as server:
        settings = producer_settings(
            kafka_settings, server.url, sites=["site_a"], ace_page_size=2000, ace_min_page_size=1000,
            record_max_samples=50, gather_max_samples=1000, log_level="warning",
        )  # fmt: skip
        proc = await streamer(settings, "producer", "--now", str(NOW))
        deadline = time.monotonic() + 40
        while await record_count(settings, settings.topic_samples) == 0:
            assert proc.returncode is None and time.monotonic() < deadline
            await asyncio.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        _, stderr = await asyncio.wait_for(proc.communicate(), 15)
        assert proc.returncode == 0, stderr.decode()
        assert time.monotonic() - stopped < 10
    assert await record_count(settings, settings.topic_sync) == 0


async def test_backfill_failure_names_site_and_resume_point(kafka_settings: Settings) -> None:
    """A backfill that cannot proceed exits 1 with one line naming the site, the error and where to resume."""
    config = SimConfig(
        sites=("site_a",), points=50, faults=FaultConfig(unauthorized_sites=frozenset({"site_a"}))
    )
    async with SimServer(config) as server:
        settings = producer_settings(kafka_settings, server.url, sites=["site_a"], log_level="error")
        proc = await streamer(
            settings,
            "backfill",
            "--site",
            "site_a",
            "--start",
            "2024-03-01T00:00:00Z",
            "--end",
            "2024-03-01T03:00:00Z",
        )
        _, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1
    (line,) = [x for x in stderr.decode().splitlines() if x.startswith("streamer backfill:")]
    assert "site site_a failed after 0 of 3 windows: AceAuthError" in line
    assert line.endswith("(resume with --start 2024-03-01T00:00:00.000Z)")


async def test_running_producer_serves_prometheus_metrics(kafka_settings: Settings) -> None:
    """`streamer producer` serves /metrics while it runs; after its first window the fetched and
    published sample counters equal exactly the samples the simulator served for it."""
    import httpx

    from tests.integration.processor.helpers import free_port

    config = SimConfig(sites=("site_m",), points=50, seed=5, repeat=0)  # no repeats: counts are exact
    served = expected(config, "site_m", NOW - 3_600_000, NOW)["all"]["count"]
    async with SimServer(config) as server:
        port = free_port()
        settings = producer_settings(
            kafka_settings,
            server.url,
            sites=["site_m"],
            log_level="warning",
            producer_metrics_port=port,
            weather_enabled=False,
        )
        proc = await streamer(settings, "producer", "--now", str(NOW))
        try:
            published = 0.0
            deadline = time.monotonic() + 60
            async with httpx.AsyncClient() as client:
                while published < served:
                    assert proc.returncode is None and time.monotonic() < deadline
                    await asyncio.sleep(0.5)
                    try:
                        text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
                    except httpx.HTTPError:
                        continue
                    published = _metric(text, 'streamer_samples_published_total{site="site_m"}')
            fetched = _metric(text, 'streamer_samples_fetched_total{site="site_m"}')
        finally:
            proc.send_signal(signal.SIGTERM)
            await proc.wait()
    assert settings.initial_lookback_s == 3600
    assert published == served
    assert fetched == served


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0
