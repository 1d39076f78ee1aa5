"""Points enabled between two refreshes lose nothing.

A point enabled in ACE after a points refresh has its samples fetched by the following windows, but
the processor drops them (the point is not configured yet) until the next refresh publishes it; by
then the watermark has moved on. So a refresh that finds newly collected points fetches again, as
``repair`` windows, everything read since the previous refresh: the point is in ``ace.points``
(acknowledged) before those samples are published again, so this time they are stored. The API has
no point filter, so the cost is the site's samples since that refresh, at most ``points_refresh_s``
of them, paid only when points appear; everything else is stored already and collapses by key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from streamer.logs import log_event
from streamer.metrics import REPAIR_API_REQUESTS, REPAIR_WINDOWS
from streamer.producer.context import ProducerContext
from streamer.producer.sync import new_sync_id, refresh_points, sync_window
from streamer.producer.windows import Window, range_windows
from streamer.times import ms_to_iso

log = logging.getLogger(__name__)


def catch_up_start(ctx: ProducerContext, site: str, watermark_ms: int) -> int:
    """The first instant read since the site's previous refresh; after a restart (no mark) the most
    a refresh period, a cycle and the overlap can span."""
    mark = ctx.refresh_marks.get(site)
    if mark is not None:
        return mark
    s = ctx.settings
    return watermark_ms - round((s.points_refresh_s + s.poll_interval_s + s.overlap_s) * 1000)


async def refresh_and_catch_up(ctx: ProducerContext, site: str, owns: Callable[[str], bool] | None) -> int:
    """Refresh the site's points; when points became collected, fetch again what was read since the
    previous refresh. Returns the catch-up windows synced."""
    before = ctx.points.get(site)
    await refresh_points(ctx, site)
    state = ctx.states.get(site)
    if state is None:
        return 0
    start = catch_up_start(ctx, site, state.watermark_ms)
    ctx.book.mark_refresh(site, state.watermark_ms - ctx.settings.overlap_s * 1000)
    new = sorted(p for p in ctx.points.get(site, {}) if before is not None and p not in before)
    new = [p for p in new if not p.startswith("weather.")]
    if not new or start >= state.watermark_ms:
        return 0
    log_event(
        log,
        logging.INFO,
        "points enabled: fetching again what was read since the last refresh",
        site=site,
        points=len(new),
        example=new[0],
        start=ms_to_iso(start),
        end=ms_to_iso(state.watermark_ms),
    )
    synced = 0
    for span in range_windows(start, state.watermark_ms, ctx.settings):
        if owns is not None and not owns(site):
            break
        window = Window(span.start_ms, span.end_ms, "repair")
        run = await sync_window(ctx, site, window, new_sync_id(site, window), weather=False, state=None)
        REPAIR_WINDOWS.labels(site=site).inc()
        REPAIR_API_REQUESTS.labels(site=site).inc(run.api_calls)
        synced += 1
    return synced
