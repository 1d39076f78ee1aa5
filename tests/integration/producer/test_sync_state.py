"""An undecodable ace.sync record fails its site visibly (exit code, status row, metric) while the other
sites go on, until `streamer producer --reset-site S --from T`; then the site resumes exactly at T."""

from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_client import REGISTRY

from streamer.ace.client import AceClient
from streamer.kafka import ensure_topics, reliable_producer
from streamer.models import SyncRun, SyncState
from streamer.producer.context import fixed_clock
from streamer.producer.reset import reset_site
from streamer.producer.runner import open_producer, run_cycle, run_owned_cycle
from streamer.producer.shard import SiteShard
from streamer.settings import Settings
from streamer.sim.config import SimConfig
from streamer.sim.model import expected
from streamer.sim.server import SimServer
from streamer.times import to_ms
from tests.integration.producer.helpers import compacted, distinct_samples, read_topic, summary
from tests.integration.producer.test_cli import streamer
from tests.integration.producer.test_cycle import producer_settings

pytestmark = pytest.mark.kafka

SITES = ("site_a", "site_b")
NOW = to_ms("2024-03-01T12:00:00Z")
FROM = NOW - 5 * 3_600_000  # where the operator resumes site_a: further back than the lookback
HOUR = 3_600_000


async def _run(settings: Settings, *args: str) -> tuple[int, str, str]:
    proc = await streamer(settings, *args)
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode is not None
    return proc.returncode, stdout.decode(), stderr.decode()


async def _runs(settings: Settings) -> list[SyncRun]:
    return [
        SyncRun.model_validate_json(v or b"")
        for _, v, _ in await read_topic(settings, settings.topic_sync_runs)
    ]


async def test_an_undecodable_sync_record_fails_its_site_until_reset(kafka_settings: Settings) -> None:
    """Garbage in site_a's ace.sync record: `producer --once` exits 1 naming site_a and the reset
    command, records a failed run (status), counts the failure, and syncs site_b; a running producer
    picks up `--reset-site site_a --from T` at its next cycle and syncs exactly [T, now)."""
    config = SimConfig(sites=SITES, seed=5, points=30)
    async with SimServer(config) as server:
        settings = producer_settings(kafka_settings, server.url, weather_enabled=False, log_level="warning")
        await ensure_topics(settings)
        producer = reliable_producer(settings)
        await producer.start()
        try:
            await producer.send_and_wait(settings.topic_sync, b"\x00{not a state", key=b"site_a")
        finally:
            await producer.stop()

        code, _, stderr = await _run(settings, "producer", "--once", "--now", str(NOW))
        assert code == 1
        assert "site site_a failed: SyncStateError" in stderr and "--reset-site site_a --from" in stderr
        assert "site_b failed" not in stderr
        failed = [r for r in await _runs(settings) if r.site == "site_a"]
        assert [(r.status, r.error is not None and "SyncStateError" in r.error) for r in failed] == [
            ("failed", True)
        ]
        sync = compacted(await read_topic(settings, settings.topic_sync))
        assert sync[b"site_a"] == b"\x00{not a state"  # nothing overwrote it
        assert SyncState.model_validate_json(sync[b"site_b"]).watermark_ms == NOW

        async with (
            AceClient(settings) as client,
            open_producer(settings, client, clock=fixed_clock(NOW)) as ctx,
        ):
            assert set(ctx.broken_sync) == {"site_a"}
            first = await run_cycle(ctx, list(SITES))
            assert sorted((o.site, o.ok) for o in first) == [("site_a", False), ("site_b", True)]
            labels = {"site": "site_a", "error": "SyncStateError"}
            assert (REGISTRY.get_sample_value("streamer_site_failures_total", labels) or 0) >= 1

            code, _, stderr = await _run(settings, "producer", "--reset-site", "site_b", "--from", str(FROM))
            assert code != 0 and "readable sync state" in stderr  # refused: a producer owns it
            code, stdout, stderr = await _run(
                settings, "producer", "--reset-site", "site_a", "--from", str(FROM)
            )
            assert code == 0, stderr
            assert "site site_a reset: its next window starts at 2024-03-01T07:00:00" in stdout

            resumed = [await run_cycle(ctx, ["site_a"]) for _ in range(5)]  # catch-up: one window a cycle
            assert all(o.ok for outcomes in resumed for o in outcomes)
            assert not ctx.broken_sync

    ok = sorted(
        (r.window_start_ms, r.window_end_ms)
        for r in await _runs(settings)
        if r.site == "site_a" and r.status == "ok"
    )
    assert ok == [(FROM + i * HOUR, FROM + (i + 1) * HOUR) for i in range(5)]
    sync = compacted(await read_topic(settings, settings.topic_sync))
    assert SyncState.model_validate_json(sync[b"site_a"]).watermark_ms == NOW
    samples = distinct_samples(await read_topic(settings, settings.topic_samples))  # site_a: resumed only
    assert summary("site_a", samples["site_a"]) == expected(config, "site_a", FROM, NOW)["all"]


async def test_with_a_producer_group_only_the_owner_fails_the_site_and_resumes_it(
    kafka_settings: Settings,
) -> None:
    """Two workers in one group: only the owner of the broken site fails it (the other never syncs
    it); when the owner leaves, the worker that gains the site fails it too instead of restarting it
    at now − lookback; after the reset it resumes exactly at T."""
    sites = tuple(f"site_{i:02d}" for i in range(6))
    config = SimConfig(sites=sites, seed=9, points=20)
    broken_site, start = "site_00", NOW - 1_800_000
    async with SimServer(config) as server:
        settings = producer_settings(
            kafka_settings,
            server.url,
            weather_enabled=False,
            producer_group=f"{kafka_settings.processor_app_id}-producers",
        )
        await ensure_topics(settings)
        producer = reliable_producer(settings)
        await producer.start()
        try:
            await producer.send_and_wait(settings.topic_sync, b"[]", key=broken_site.encode())
        finally:
            await producer.stop()
        async with (
            AceClient(settings) as client_a,
            AceClient(settings) as client_b,
            open_producer(settings, client_a, clock=fixed_clock(NOW)) as ctx_a,
            open_producer(settings, client_b, clock=fixed_clock(NOW)) as ctx_b,
        ):
            shard_a = SiteShard(settings, ctx_a.partitions[settings.topic_sync])
            shard_b = SiteShard(settings, ctx_b.partitions[settings.topic_sync])
            await shard_a.start()
            await shard_b.start()
            try:
                await _until_split(shard_a, shard_b, sites)
                owner, other = (shard_a, shard_b) if shard_a.owns(broken_site) else (shard_b, shard_a)
                ctx_owner, ctx_other = (ctx_a, ctx_b) if owner is shard_a else (ctx_b, ctx_a)
                done_owner, done_other = await asyncio.gather(
                    run_owned_cycle(ctx_owner, shard=owner), run_owned_cycle(ctx_other, shard=other)
                )
                assert [(o.site, o.ok) for o in done_owner if o.site == broken_site] == [(broken_site, False)]
                assert broken_site not in {o.site for o in done_other}
                assert all(o.ok for o in [*done_owner, *done_other] if o.site != broken_site)

                await owner.stop()
                deadline = time.monotonic() + 60
                while not all(other.owns(s) for s in sites):
                    assert time.monotonic() < deadline, "the remaining worker never took every site"
                    await asyncio.sleep(0.2)
                gained = await run_owned_cycle(ctx_other, shard=other)
                assert sorted((o.site, o.ok, o.windows) for o in gained) == [
                    (s, s != broken_site, 0) for s in sites
                ]

                await reset_site(settings, broken_site, start, NOW)
                resumed = await run_owned_cycle(ctx_other, shard=other)
                assert sorted((o.site, o.ok, o.windows) for o in resumed) == [
                    (s, True, 1 if s == broken_site else 0) for s in sites
                ]
            finally:
                await shard_a.stop()
                await shard_b.stop()

    ok = [
        (r.window_start_ms, r.window_end_ms)
        for r in await _runs(settings)
        if r.site == broken_site and r.status == "ok"
    ]
    assert ok == [(start, NOW)]
    samples = distinct_samples(await read_topic(settings, settings.topic_samples))
    assert summary(broken_site, samples[broken_site]) == expected(config, broken_site, start, NOW)["all"]


async def _until_split(a: SiteShard, b: SiteShard, sites: tuple[str, ...], timeout: float = 60) -> None:
    """Until the group settled with both: every site owned by exactly one of them, each some."""
    deadline = time.monotonic() + timeout
    while not all(a.owns(s) != b.owns(s) for s in sites) or not any(a.owns(s) for s in sites):
        assert time.monotonic() < deadline, "the group never split the sites between the two workers"
        await asyncio.sleep(0.2)
