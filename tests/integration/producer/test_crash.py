"""A producer process killed mid-window loses nothing: the restarted one re-polls the window."""

from __future__ import annotations

import asyncio
import signal
import sys
import time

import pytest

from streamer.models import SyncState
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


async def start_producer(settings: Settings, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streamer.cli", "producer", "--now", str(NOW), *args,
        env=child_env(settings), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def test_sigkill_mid_window_then_restart_loses_nothing(kafka_settings: Settings) -> None:
    """SIGKILL while a window is half published, then a restart: every sample of the window is in
    ace.samples and the watermark is the window end."""
    slow = FaultConfig(rate_slow=1.0, slow_ms=250)
    config = SimConfig(sites=("site_a",), points=1000, seed=11, order="grouped", faults=slow)
    async with SimServer(config) as server:
        settings = producer_settings(
            kafka_settings, server.url, sites=["site_a"], ace_page_size=4000, ace_min_page_size=1000,
            record_max_samples=100, gather_max_samples=2000, log_level="warning",
        )  # fmt: skip
        first = await start_producer(settings)
        deadline = time.monotonic() + 40
        while await record_count(settings, settings.topic_samples) < 50:
            assert first.returncode is None, (await first.communicate())[1].decode()
            assert time.monotonic() < deadline, "the producer published nothing"
            await asyncio.sleep(0.1)
        first.send_signal(signal.SIGKILL)
        await first.wait()
        assert first.returncode == -signal.SIGKILL

        want = expected(config, "site_a", NOW - HOUR, NOW)["all"]
        partial = distinct_samples(await read_topic(settings, settings.topic_samples))["site_a"]
        assert 0 < len(partial) < want["count"], "the kill did not land mid-window"
        assert await record_count(settings, settings.topic_sync) == 0

        server.state.faults.config = FaultConfig()
        second = await start_producer(settings, "--once")
        _, stderr = await asyncio.wait_for(second.communicate(), timeout=60)
        assert second.returncode == 0, stderr.decode()

    samples = distinct_samples(await read_topic(settings, settings.topic_samples))["site_a"]
    assert summary("site_a", samples) == want
    sync = compacted(await read_topic(settings, settings.topic_sync))
    assert SyncState.model_validate_json(sync[b"site_a"]).watermark_ms == NOW
