"""The producer's loops: start-up and recovery, one cycle over every site, forever, and manual backfill.

Sites are independent: one site's failure (401, retries exhausted, a broken pagination, Kafka refusing
its records) is logged with the site, counted, and leaves that site's watermark where it was; the other
sites go on. Sites run concurrently, ``producer_site_concurrency`` at a time.

Several producer workers share the sites through a ``SiteShard`` (producer/shard.py): a consumer
group on ``ace.sync`` assigns each worker partitions, and a worker syncs the sites whose key hashes to
one of them, re-reading the state of sites it gains.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass

from streamer.errors import KafkaTransientError, StreamerError
from streamer.kafka import ensure_topics, reliable_producer, start_client, topic_max_message_bytes
from streamer.logs import log_event
from streamer.metrics import NEXT_CYCLE_AT, SITE_FAILURES
from streamer.models import SyncRun
from streamer.producer.catchup import refresh_and_catch_up
from streamer.producer.compression import compression_type, use_level
from streamer.producer.context import AceApi, Clock, ProducerContext, system_clock
from streamer.producer.publisher import topic_partitions
from streamer.producer.reset import check_site_state
from streamer.producer.shard import SiteFilter, SiteShard, sites_in
from streamer.producer.state import decode_points, decode_sync, read_compacted
from streamer.producer.sync import new_sync_id, points_due, refresh_points, sync_window
from streamer.producer.windows import Window, advance, backfill_state, next_window, range_windows
from streamer.runtime import trim_heap
from streamer.settings import Settings

log = logging.getLogger(__name__)

# aiokafka's default batch size; a batch (and so a record) must also stay under the topic's
# max.message.bytes, less what a record batch and a record add around the values.
MAX_BATCH_BYTES = 1_048_576
BATCH_MARGIN = 512
KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588


@dataclass(frozen=True, slots=True)
class SiteOutcome:
    site: str
    ok: bool
    windows: int = 0
    samples: int = 0
    error: str | None = None


@asynccontextmanager
async def open_producer(
    settings: Settings, client: AceApi, *, clock: Clock = system_clock
) -> AsyncIterator[ProducerContext]:
    """Create missing topics, start the Kafka producer and recover the state from the compacted topics."""
    created = set(await ensure_topics(settings))
    try:
        topic_limit = await topic_max_message_bytes(settings, settings.topic_samples)
    except KafkaTransientError as exc:
        # E.g. no DescribeConfigs permission. A record the broker refuses still fails its window loudly.
        log_event(log, logging.WARNING, "topic limit unknown, broker default assumed", error=str(exc))
        topic_limit = KAFKA_DEFAULT_MAX_MESSAGE_BYTES
    batch_bytes = min(MAX_BATCH_BYTES, topic_limit - BATCH_MARGIN)
    use_level(settings.producer_compression, settings.producer_compression_level)
    codec = compression_type(settings.producer_compression)
    producer = reliable_producer(settings, compression_type=codec, max_batch_size=batch_bytes)
    await start_client(producer, settings)
    try:
        ctx = ProducerContext(settings, client, producer, clock)
        ctx.record_max_bytes = min(settings.record_max_bytes, batch_bytes - BATCH_MARGIN)
        for topic in (settings.topic_samples, settings.topic_points, settings.topic_sync):
            ctx.partitions[topic] = await topic_partitions(producer, topic)
        # A topic created just now is empty (and its partitions may still be electing leaders).
        if settings.topic_sync not in created:
            sync_view = await read_compacted(
                settings, settings.topic_sync, ctx.partitions[settings.topic_sync]
            )
            broken: dict[str, str] = {}
            ctx.book.recover(states=decode_sync(sync_view, broken), broken=broken)
        if settings.topic_points not in created:
            points_view = await read_compacted(
                settings, settings.topic_points, ctx.partitions[settings.topic_points]
            )
            ctx.book.recover(points=decode_points(points_view))
            del points_view
        trim_heap()  # the compacted topics' views are gone
        log_event(
            log,
            logging.INFO,
            "producer state recovered",
            sites=len(ctx.states),
            unreadable_sites=",".join(sorted(ctx.broken_sync)) or "-",
            point_sites=len(ctx.points),
            record_max_bytes=ctx.record_max_bytes,
        )
        yield ctx
    finally:
        await producer.stop()


async def discover_sites(ctx: ProducerContext, site_filter: SiteFilter | None = None) -> list[str]:
    """The configured sites, or every site the API lists as collected and not archived."""
    if ctx.settings.sites:
        sites = list(ctx.settings.sites)
    else:
        sites = [s.name for s in await ctx.client.list_sites() if s.collect_enabled and not s.archived]
    return [s for s in sites if site_filter is None or site_filter(s)]


async def sync_site(
    ctx: ProducerContext, site: str, stop: asyncio.Event | None = None, owns: SiteFilter | None = None
) -> SiteOutcome:
    """Refresh the site's points when due, then sync windows until it is up to date (or, with
    ``owns``, until this worker no longer owns the site)."""
    windows = samples = 0
    try:
        if site in ctx.broken_sync:
            await check_site_state(ctx, site)
        if points_due(ctx, site):
            await refresh_and_catch_up(ctx, site, owns)
        while (window := next_window(ctx.states.get(site), ctx.window_now(), ctx.settings)) is not None:
            if owns is not None and not owns(site):
                log_event(log, logging.INFO, "site handed over", site=site)
                break
            sync_id = new_sync_id(site, window)
            state = advance(ctx.states.get(site), site, window, sync_id, ctx.clock())
            weather = ctx.settings.weather_enabled and window.kind == "incremental"
            run = await sync_window(ctx, site, window, sync_id, weather=weather, state=state)
            windows += 1
            samples += run.samples_published
            if window.kind == "incremental" or (stop is not None and stop.is_set()):
                break
        if ctx.repair is not None and (owns is None or owns(site)):
            await ctx.repair.visit(ctx, site, owns)
    except Exception as exc:
        SITE_FAILURES.labels(site=site, error=type(exc).__name__).inc()
        error = f"{type(exc).__name__}: {exc}"
        log_event(log, logging.ERROR, "site failed", site=site, error=error)
        if not isinstance(exc, StreamerError):
            log.exception("unexpected error syncing site %s", site)
        return SiteOutcome(site, False, windows, samples, error)
    return SiteOutcome(site, True, windows, samples)


async def run_cycle(
    ctx: ProducerContext, sites: list[str], stop: asyncio.Event | None = None, owns: SiteFilter | None = None
) -> list[SiteOutcome]:
    """One pass over ``sites``, a bounded number at a time; never raises for one site's failure."""
    gate = asyncio.Semaphore(ctx.settings.producer_site_concurrency)

    async def one(site: str) -> SiteOutcome:
        async with gate:
            return await sync_site(ctx, site, stop, owns)

    return list(await asyncio.gather(*(one(site) for site in sites)))


async def run_forever(ctx: ProducerContext, stop: asyncio.Event, shard: SiteShard | None = None) -> None:
    """Cycle every ``poll_interval_s`` until ``stop`` is set; then abandon the running windows.

    With a ``shard``, each cycle covers only the sites this worker owns now.
    """
    while not stop.is_set():
        started = time.monotonic()
        NEXT_CYCLE_AT.set(0)
        cycle = asyncio.create_task(_cycle(ctx, stop, shard))
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({cycle, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            # Abandoned windows never reached their state publish: their watermarks stay.
            cycle.cancel()
            await asyncio.gather(cycle, return_exceptions=True)
            break
        stopper.cancel()
        remaining = ctx.settings.poll_interval_s - (time.monotonic() - started)
        if remaining > 0:
            NEXT_CYCLE_AT.set(time.time() + remaining)
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=remaining)
    log_event(log, logging.INFO, "producer stopped")


async def run_owned_cycle(
    ctx: ProducerContext, stop: asyncio.Event | None = None, shard: SiteShard | None = None
) -> list[SiteOutcome]:
    """One cycle over the sites this worker owns (every site without a shard)."""
    owns = shard.owns if shard is not None else None
    if shard is not None:
        await adopt_gained_sites(ctx, shard.take_gained())
        forget_handed_over(ctx, shard.owns)
    return await run_cycle(ctx, await discover_sites(ctx, owns), stop, owns)


async def adopt_gained_sites(ctx: ProducerContext, gained: set[int]) -> None:
    """Re-read the sync state and points of the sites in ``gained`` ace.sync partitions: their
    previous owner may have moved them on since this worker last read them."""
    if not gained:
        return
    s = ctx.settings
    sync_parts = ctx.partitions[s.topic_sync]
    broken: dict[str, str] = {}
    states = decode_sync(await read_compacted(s, s.topic_sync, sync_parts), broken)
    points = decode_points(await read_compacted(s, s.topic_points, ctx.partitions[s.topic_points]))
    mine = sites_in(gained, sync_parts)
    for site in {*ctx.states, *states, *ctx.points, *points, *ctx.broken_sync, *broken}:
        if mine(site):
            ctx.book.adopt(site, states.get(site), broken.get(site), points.get(site))
    log_event(log, logging.INFO, "sites adopted", partitions=",".join(map(str, sorted(gained))))


def forget_handed_over(ctx: ProducerContext, owns: SiteFilter) -> None:
    """Drop what the book holds of sites this worker does not own: memory follows the sites owned."""
    forgotten = ctx.book.retain(owns)
    if forgotten:
        log_event(log, logging.INFO, "sites forgotten", sites=forgotten)
        trim_heap()


async def _cycle(ctx: ProducerContext, stop: asyncio.Event, shard: SiteShard | None) -> None:
    try:
        outcomes = await run_owned_cycle(ctx, stop, shard)
    except StreamerError as exc:
        log_event(log, logging.ERROR, "cycle failed", error=f"{type(exc).__name__}: {exc}")
        return
    failed = [o.site for o in outcomes if not o.ok]
    log_event(log, logging.INFO, "cycle done", sites=len(outcomes), failed=",".join(failed) or "-")


async def backfill(
    ctx: ProducerContext,
    site: str,
    start_ms: int,
    end_ms: int,
    on_window: Callable[[Window, SyncRun], None] | None = None,
) -> list[SyncRun]:
    """Sync ``[start_ms, end_ms)`` in windows of ``max_window_s``. The watermark moves only forward and
    only when a window joins it; a failure raises (earlier windows stay published)."""
    if points_due(ctx, site):
        await refresh_points(ctx, site)
    runs: list[SyncRun] = []
    for window in range_windows(start_ms, end_ms, ctx.settings):
        sync_id = new_sync_id(site, window)
        state = backfill_state(ctx.states.get(site), window, sync_id, ctx.clock())
        if window.end_ms > ctx.window_now():
            state = None  # past the API's now: published, but the watermark must not move there
        run = await sync_window(ctx, site, window, sync_id, weather=False, state=state)
        runs.append(run)
        if on_window is not None:
            on_window(window, run)
    return runs
