"""One site's work: refresh its points, and sync one window of its samples.

The order matters and is kept here: a refresh's point changes are published *and acknowledged* before
the cycle's samples (the processor judges samples against the points it has seen), and the watermark
moves only after every record of the window is acknowledged. Failing anywhere leaves the watermark
where it was, so the window is read again: samples may repeat in Kafka, none is lost.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass

import orjson
from aiokafka.errors import KafkaError

from streamer.ace.pagination import TimeseriesPage
from streamer.errors import AceRetriesExhausted, KafkaTransientError, StreamerError
from streamer.logs import log_event
from streamer.metrics import (
    POINTS_REFRESH_FAILURES,
    RECORDS_PUBLISHED,
    SAMPLES_FETCHED,
    SAMPLES_MALFORMED,
    SAMPLES_PUBLISHED,
    SAMPLES_UNCHANGED,
    WATERMARK_AGE,
)
from streamer.models import SyncRun, SyncState
from streamer.producer.context import ProducerContext
from streamer.producer.grouping import Group, PointGrouper, frame
from streamer.producer.overlap import OverlapFilter
from streamer.producer.pages import read_ahead
from streamer.producer.points import diff_points, point_record, weather_records
from streamer.producer.publisher import BatchPublisher
from streamer.producer.windows import Window, read_spans
from streamer.times import ms_to_iso

log = logging.getLogger(__name__)

# A full GC pass walks every object the process holds, every site's points table included (~85 CPU-ms
# with 500 sites of 200 points): one per window made a cycle over N sites cost N². Paid per samples
# fetched instead, it still frees what a backfill's multi-MB pages left in the old generation about
# once per window of theirs (a 1 h window of 4,583 points is 275,000 samples), and small incremental
# windows share one.
FULL_GC_SAMPLES = 250_000


@dataclass(slots=True)
class WindowStats:
    pages: int = 0
    fetched: int = 0
    malformed: int = 0
    records: int = 0
    samples: int = 0
    errors: int = 0


async def refresh_points(ctx: ProducerContext, site: str) -> int:
    """Publish the site's point changes to ``ace.points`` and await their acks; returns the count.

    A listing the API could not give whole (it disagreed with itself, or failed, on every attempt)
    fails only the refresh when the site has a table already: nothing is tombstoned, the samples go
    on being judged against that table, and the refresh is tried again next cycle. Without a table
    the site fails, since its samples would all be dropped as not configured.
    """
    now_ms = ctx.clock()
    try:
        points = await ctx.client.list_points(site)
    except AceRetriesExhausted as exc:
        if site not in ctx.points:
            raise
        reason = getattr(exc.__cause__, "reason", type(exc).__name__)
        POINTS_REFRESH_FAILURES.labels(site=site, reason=reason).inc()
        log_event(
            log,
            logging.WARNING,
            "points refresh failed; previous table kept",
            site=site,
            points=len(ctx.points[site]),
            error=str(exc),
        )
        return 0
    records = [point_record(site, point, now_ms) for point in points]
    if ctx.settings.weather_enabled:
        records += weather_records(site, now_ms)
    changes, published = diff_points(site, ctx.points.get(site, {}), records)
    if changes:
        publisher = ctx.publisher(ctx.settings.topic_points)
        for change in changes:
            await publisher.add(change.key, change.value)
        await publisher.flush()
        RECORDS_PUBLISHED.labels(topic=ctx.settings.topic_points).inc(len(changes))
    ctx.book.points_published(site, published, time.monotonic(), changed=bool(changes))
    tombstones = sum(1 for c in changes if c.value is None)
    log_event(
        log,
        logging.INFO,
        "points refreshed",
        site=site,
        points=len(published),
        changed=len(changes) - tombstones,
        tombstones=tombstones,
    )
    return len(changes)


def points_due(ctx: ProducerContext, site: str) -> bool:
    last = ctx.points_refreshed.get(site)
    return last is None or time.monotonic() - last >= ctx.settings.points_refresh_s


def new_sync_id(site: str, window: Window) -> str:
    return f"{site}:{window.start_ms}-{window.end_ms}:{uuid.uuid4().hex[:8]}"


async def sync_window(
    ctx: ProducerContext,
    site: str,
    window: Window,
    sync_id: str,
    *,
    weather: bool,
    state: SyncState | None,
) -> SyncRun:
    """Stream the window to ``ace.samples``, then publish the new state and a ``SyncRun``.

    ``state`` is the state to publish once everything is acknowledged (None: leave ``ace.sync`` as it
    is). Raises on failure after publishing a failed ``SyncRun``; the watermark does not move then.
    """
    started_ms, started = ctx.clock(), time.monotonic()
    calls_before = ctx.client.site_stats(site).api_calls
    stats = WindowStats()
    publisher = ctx.publisher(ctx.settings.topic_samples)
    reread = _overlap_filter(ctx, site, window, state)
    try:
        await _stream(ctx, site, window, sync_id, publisher, stats, reread)
        if weather:
            await _weather(ctx, site, sync_id, publisher, stats)
        await publisher.flush()
        RECORDS_PUBLISHED.labels(topic=ctx.settings.topic_samples).inc(stats.records)
        SAMPLES_PUBLISHED.labels(site=site).inc(stats.samples)
        if state is not None:
            await ctx.send_and_wait(ctx.settings.topic_sync, site.encode(), state.model_dump_json().encode())
            ctx.book.advanced(site, state)
            ctx.book.window_seen(site, None if reread is None else reread.seen(window.end_ms))
            WATERMARK_AGE.labels(site=site).set(max(0, ctx.clock() - state.watermark_ms) / 1000)
    except asyncio.CancelledError:
        publisher.abandon()  # stopping: the window is abandoned, its watermark stays
        raise
    except Exception as exc:
        publisher.abandon()
        run = _run(ctx, site, window, sync_id, started_ms, started, calls_before, stats, exc)
        await _publish_run(ctx, run, quiet=True)
        raise
    run = _run(ctx, site, window, sync_id, started_ms, started, calls_before, stats, None)
    await _publish_run(ctx, run, quiet=False)
    return run


def _overlap_filter(
    ctx: ProducerContext, site: str, window: Window, state: SyncState | None
) -> OverlapFilter | None:
    """The filter of an incremental window that will move the watermark; None for any other window."""
    if window.kind != "incremental" or state is None or not ctx.settings.overlap_skip_unchanged:
        return None
    return OverlapFilter(ctx.book.seen.get(site), window)


async def _stream(
    ctx: ProducerContext,
    site: str,
    window: Window,
    sync_id: str,
    publisher: BatchPublisher,
    stats: WindowStats,
    reread: OverlapFilter | None = None,
) -> None:
    head, mid, tail = frame(site, sync_id)
    # What every record of the window holds besides its point and samples: the value's frame, "site/".
    frame_bytes = len(head) + len(mid) + len(tail) + len(site.encode()) + 1
    grouper = PointGrouper(
        ctx.settings.record_max_samples,
        ctx.settings.gather_max_samples,
        ctx.record_max_bytes - frame_bytes,
        known=ctx.points.get(site, ()),
        defer_max=ctx.settings.ace_page_size,
    )
    fetched = SAMPLES_FETCHED.labels(site=site)
    spans = read_spans(window, split=ctx.book.window_pages.get(site, 0) > 1)
    pages = read_ahead(_span_pages(ctx, site, spans))
    async with aclosing(pages):
        async for page in pages:
            if page is None:  # a span read whole: its samples go out before the next span's
                await _publish_groups(site, sync_id, grouper.finish(), publisher, stats)
                await publisher.submit()
                continue
            stats.pages += 1
            stats.fetched += len(page.samples)
            fetched.inc(len(page.samples))
            groups = grouper.add(page.samples if reread is None else reread.page(page.samples))
            del page  # its samples die once grouped (with the next page's: PointGrouper.defer_max)
            await _publish_groups(site, sync_id, groups, publisher, stats)
            await publisher.submit()
            # httpx responses sit in reference cycles, each holding its multi-MB body; this loop
            # allocates too few tracked objects for the cyclic GC to run on its own, so bodies would
            # pile up (measured: +35 MB per window). Young generations only: cheap.
            gc.collect(1)
    ctx.book.window_read(site, stats.pages)
    if reread is not None and reread.unchanged:
        SAMPLES_UNCHANGED.labels(site=site).inc(reread.unchanged)
    ctx.samples_since_full_gc += stats.fetched
    if ctx.samples_since_full_gc >= FULL_GC_SAMPLES:
        ctx.samples_since_full_gc = 0
        gc.collect()  # the cycles promoted past the young generations meanwhile (see above)
    stats.malformed = grouper.malformed
    if grouper.malformed:
        stats.errors += 1
        for reason, count in grouper.malformed_by.items():
            SAMPLES_MALFORMED.labels(site=site, reason=reason).inc(count)
        log_event(
            log,
            logging.WARNING,
            "malformed samples skipped",
            site=site,
            sync_id=sync_id,
            count=grouper.malformed,
            reasons=",".join(f"{k}={v}" for k, v in sorted(grouper.malformed_by.items())),
            example=repr(grouper.last_malformed)[:200],
        )


async def _span_pages(
    ctx: ProducerContext, site: str, spans: list[tuple[int, int]]
) -> AsyncIterator[TimeseriesPage | None]:
    """The pages of each span in turn, and None after each span's last page."""
    for start_ms, end_ms in spans:
        async with aclosing(ctx.client.iter_timeseries(site, start_ms, end_ms)) as pages:
            async for page in pages:
                yield page
        yield None


async def _publish_groups(
    site: str, sync_id: str, groups: list[Group], publisher: BatchPublisher, stats: WindowStats
) -> None:
    prefix = site + "/"
    head, mid, tail = frame(site, sync_id)
    dumps = orjson.dumps
    for point, size, body in groups:
        value = b"".join((head, dumps(point), mid, body, tail))
        await publisher.add((prefix + point).encode(), value)
        stats.records += 1
        stats.samples += size


async def _weather(
    ctx: ProducerContext, site: str, sync_id: str, publisher: BatchPublisher, stats: WindowStats
) -> None:
    """Current weather as ``weather.*`` samples; a failure is logged and counted, never fatal."""
    try:
        samples = await ctx.client.get_weather(site)
    except StreamerError as exc:
        stats.errors += 1
        log_event(log, logging.WARNING, "weather failed", site=site, error=f"{type(exc).__name__}: {exc}")
        return
    groups = [Group(s.point, 1, orjson.dumps((s.time, s.value))) for s in samples]
    await _publish_groups(site, sync_id, groups, publisher, stats)


def _run(
    ctx: ProducerContext,
    site: str,
    window: Window,
    sync_id: str,
    started_ms: int,
    started: float,
    calls_before: int,
    stats: WindowStats,
    exc: BaseException | None,
) -> SyncRun:
    return SyncRun(
        sync_id=sync_id,
        site=site,
        window_start_ms=window.start_ms,
        window_end_ms=window.end_ms,
        kind=window.kind,
        started_at_ms=started_ms,
        duration_ms=round((time.monotonic() - started) * 1000),
        api_calls=ctx.client.site_stats(site).api_calls - calls_before,
        pages=stats.pages,
        samples_fetched=stats.fetched,
        records_published=stats.records if exc is None else 0,
        samples_published=stats.samples if exc is None else 0,
        errors=stats.errors + (exc is not None),
        status="ok" if exc is None else "failed",
        error=None if exc is None else _describe(exc),
    )


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _publish_run(ctx: ProducerContext, run: SyncRun, *, quiet: bool) -> None:
    """Record the run; when the window already failed, a failure here must not hide the first one."""
    try:
        await ctx.send_and_wait(
            ctx.settings.topic_sync_runs, run.site.encode(), run.model_dump_json().encode()
        )
    except (KafkaTransientError, KafkaError) as exc:
        if not quiet:
            raise
        log_event(log, logging.WARNING, "sync run not recorded", site=run.site, error=str(exc))
    log_event(
        log,
        logging.INFO if run.status == "ok" else logging.WARNING,
        "window synced" if run.status == "ok" else "window failed",
        site=run.site,
        kind=run.kind,
        start=ms_to_iso(run.window_start_ms),
        end=ms_to_iso(run.window_end_ms),
        pages=run.pages,
        samples=run.samples_published,
        records=run.records_published,
        ms=run.duration_ms,
        **({"error": run.error} if run.error else {}),
    )
