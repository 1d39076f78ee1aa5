"""Producer workers in one group share the sites: each synced by exactly one, handed over on leave."""

from __future__ import annotations

import asyncio
import time

import pytest

from streamer.ace.client import AceClient
from streamer.models import SyncRun
from streamer.producer.context import fixed_clock
from streamer.producer.runner import open_producer, run_owned_cycle
from streamer.producer.shard import SiteShard
from streamer.settings import Settings
from streamer.sim.config import SimConfig
from streamer.sim.model import expected
from streamer.sim.server import SimServer
from streamer.times import to_ms
from tests.integration.producer.helpers import distinct_samples, read_topic, summary
from tests.integration.producer.test_cycle import producer_settings

pytestmark = pytest.mark.kafka

SITES = tuple(f"site_{i:02d}" for i in range(8))
NOW = to_ms("2024-03-01T12:00:00Z")
HOUR = 3_600_000


async def _until_split(a: SiteShard, b: SiteShard, timeout: float = 60) -> None:
    """Until the group settled with both: every site owned by exactly one of them."""
    deadline = time.monotonic() + timeout
    while not all(a.owns(s) != b.owns(s) for s in SITES) or not any(a.owns(s) for s in SITES):
        assert time.monotonic() < deadline, "the group never split the sites between the two workers"
        await asyncio.sleep(0.2)
    assert any(b.owns(s) for s in SITES)


async def test_two_workers_split_the_sites_and_hand_them_over(kafka_settings: Settings) -> None:
    """Two workers in one group sync disjoint sites covering all eight, once each (one run per site,
    samples exact); when one leaves, the other owns every site and, having re-read the state of the
    sites it gained, finds them up to date (no second run)."""
    config = SimConfig(sites=SITES, points=40, seed=3)
    async with SimServer(config) as server:
        settings = producer_settings(
            kafka_settings, server.url, producer_group=f"{kafka_settings.processor_app_id}-producers"
        )
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
                await _until_split(shard_a, shard_b)
                done_a, done_b = await asyncio.gather(
                    run_owned_cycle(ctx_a, shard=shard_a), run_owned_cycle(ctx_b, shard=shard_b)
                )
                synced_a = {o.site for o in done_a if o.ok and o.windows == 1}
                synced_b = {o.site for o in done_b if o.ok and o.windows == 1}
                assert synced_a == {s for s in SITES if shard_a.owns(s)}
                assert synced_b == {s for s in SITES if shard_b.owns(s)}
                assert synced_a | synced_b == set(SITES) and not synced_a & synced_b

                await shard_b.stop()
                deadline = time.monotonic() + 60
                while not all(shard_a.owns(s) for s in SITES):
                    assert time.monotonic() < deadline, "the remaining worker never took every site"
                    await asyncio.sleep(0.2)
                again = await run_owned_cycle(ctx_a, shard=shard_a)
                assert sorted((o.site, o.ok, o.windows) for o in again) == [(s, True, 0) for s in SITES]
            finally:
                await shard_a.stop()
                await shard_b.stop()

    samples = distinct_samples(await read_topic(settings, settings.topic_samples))
    for site in SITES:
        assert summary(site, samples[site]) == expected(config, site, NOW - HOUR, NOW)["all"]
    runs = [
        SyncRun.model_validate_json(v or b"")
        for _, v, _ in await read_topic(settings, settings.topic_sync_runs)
    ]
    assert sorted(r.site for r in runs) == sorted(SITES)


async def test_a_worker_forgets_the_sites_it_handed_over(kafka_settings: Settings) -> None:
    """A worker that synced every site alone holds, once a second worker took half of them, the state,
    points table and window history of its own sites only (memory follows the sites owned); the
    newcomer, which recovered every site's state at start-up, keeps only its own too."""
    config = SimConfig(sites=SITES, points=40, seed=5)
    async with SimServer(config) as server:
        settings = producer_settings(
            kafka_settings, server.url, producer_group=f"{kafka_settings.processor_app_id}-producers"
        )
        async with (
            AceClient(settings) as client_a,
            AceClient(settings) as client_b,
            open_producer(settings, client_a, clock=fixed_clock(NOW)) as ctx_a,
        ):
            shard_a = SiteShard(settings, ctx_a.partitions[settings.topic_sync])
            await shard_a.start()
            try:
                assert all(shard_a.owns(s) for s in SITES)
                await run_owned_cycle(ctx_a, shard=shard_a)
                book_a = ctx_a.book
                assert set(book_a.states) == set(book_a.points) == set(book_a.window_pages) == set(SITES)
                async with open_producer(settings, client_b, clock=fixed_clock(NOW)) as ctx_b:
                    assert set(ctx_b.book.states) == set(ctx_b.book.points) == set(SITES)
                    shard_b = SiteShard(settings, ctx_b.partitions[settings.topic_sync])
                    await shard_b.start()
                    try:
                        await _until_split(shard_a, shard_b)
                        await asyncio.gather(
                            run_owned_cycle(ctx_a, shard=shard_a), run_owned_cycle(ctx_b, shard=shard_b)
                        )
                        for ctx, shard in ((ctx_a, shard_a), (ctx_b, shard_b)):
                            mine = {s for s in SITES if shard.owns(s)}
                            book = ctx.book
                            assert set(book.states) == set(book.points) == mine
                            assert set(book.window_pages) <= mine
                            assert set(book.points_refreshed) <= mine
                    finally:
                        await shard_b.stop()
            finally:
                await shard_a.stop()
