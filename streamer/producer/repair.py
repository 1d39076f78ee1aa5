"""The repair loop: every hour of a site is revisited at increasing ages and fetched again when the
store holds fewer samples than its points promise, within a per-site budget of API requests.

Why this shape (ARCHITECTURE.md): the producer stays the only caller of the ACE API and the sink the
only writer of ClickHouse. The producer asks how complete an hour is through the read path
(``streamer.query.backend``: the query service against a ClickHouse server, or the query API of the
process that owns the embedded engine), and a re-fetch is an ordinary window of kind ``repair``
published to ``ace.samples``: the processor stores it like any other, and ReplacingMergeTree plus the
rollups recomputed from ``timeseries_raw FINAL`` keep every count exact however often a window comes
again. A repair never publishes a sync state, so the incremental watermark never moves backwards.

Revisits are worked out from the clock alone: an hour ``[h, h + 1 h)`` is due at age ``a`` once
``now >= h + 1 h + a``; each pass takes the hours that became due since the previous pass of the site,
so an hour is judged once per age (at most one re-fetch per age, never more). Hours that start
before the site's first synced window were never read and are left alone (``initial_lookback_s``
and ``streamer backfill`` decide how far back a site goes, not the repair loop). Hours past the
site's watermark wait until the incremental loop has read them; hours refused by the budget wait for
the next pass. The loop's memory is per worker: after a restart or a hand-over the new owner revisits
the hours that reach an age from then on (an age passed while no worker owned the site is skipped;
the next age still comes).
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from streamer.errors import StreamerError
from streamer.logs import log_event
from streamer.metrics import (
    COMPLETENESS_24H,
    REPAIR_API_REQUESTS,
    REPAIR_REVISITS,
    REPAIR_SAMPLES_RECOVERED,
    REPAIR_WINDOWS,
)
from streamer.models import SyncRun
from streamer.producer.context import ProducerContext
from streamer.producer.sync import new_sync_id, sync_window
from streamer.producer.windows import Window
from streamer.query.params import TimeRange
from streamer.settings import Settings

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000
MAX_PENDING = 2_000  # due hours held per site while the budget or the watermark holds them back
JUDGED_SPAN_MS = 30 * 24 * HOUR_MS  # hours judged by one completeness answer (the API allows 31 days)


class CompletenessSource(Protocol):
    """The part of ``streamer.query.backend.Backend`` the loop reads."""

    async def completeness(self, site: str, time_range: TimeRange) -> dict[str, Any]: ...


def due_hours(last_ms: int, now_ms: int, ages_s: list[int]) -> dict[int, int]:
    """Hour start → age (s) for the hours that reached one of ``ages_s`` in ``(last_ms, now_ms]``;
    an hour reaching several ages at once keeps the oldest."""
    due: dict[int, int] = {}
    for age in ages_s:
        low, high = last_ms - age * 1000, now_ms - age * 1000  # hour ends in (low, high]
        first_end = (low // HOUR_MS + 1) * HOUR_MS
        for end in range(first_end, high + 1, HOUR_MS):
            due[end - HOUR_MS] = max(due.get(end - HOUR_MS, 0), age)
    return due


@dataclass
class Budget:
    """API requests spent on repairs in the last hour of the producer's clock."""

    limit: int
    spent: deque[tuple[int, int]] = field(default_factory=deque)

    def used(self, now_ms: int) -> int:
        while self.spent and self.spent[0][0] <= now_ms - HOUR_MS:
            self.spent.popleft()
        return sum(calls for _, calls in self.spent)

    def allows(self, now_ms: int, cost: int) -> bool:
        return self.used(now_ms) + cost <= self.limit

    def spend(self, now_ms: int, calls: int) -> None:
        self.spent.append((now_ms, calls))


@dataclass
class SiteRepairs:
    """What the loop remembers of one site."""

    last_ms: int
    budget: Budget
    pending: dict[int, int] = field(default_factory=dict)  # hour start → age it is due at
    verify: list[tuple[SyncRun, int]] = field(default_factory=list)  # (repair run, stored before it)
    estimate: int = 0  # API requests the site's last repair window cost
    judged: dict[int, tuple[int, int]] = field(default_factory=dict)  # hour → (stored, expected) last read


class RepairLoop:
    """Revisits, judges and re-fetches the hours of the sites this worker syncs."""

    def __init__(self, settings: Settings, source: CompletenessSource) -> None:
        self._settings = settings
        self._source = source
        self._sites: dict[str, SiteRepairs] = {}

    def site(self, site: str, now_ms: int) -> SiteRepairs:
        found = self._sites.get(site)
        if found is None:
            found = self._sites[site] = SiteRepairs(now_ms, Budget(self._settings.repair_budget_per_hour))
        return found

    async def visit(self, ctx: ProducerContext, site: str, owns: Callable[[str], bool] | None = None) -> None:
        """One pass over ``site``: count what the last repairs recovered, take the newly due hours, and
        re-fetch the incomplete ones the budget allows. A failed read leaves the hours pending."""
        now = ctx.clock()
        repairs = self.site(site, now)
        for hour, age in due_hours(repairs.last_ms, now, self._settings.repair_revisit_s).items():
            repairs.pending[hour] = max(repairs.pending.get(hour, 0), age)
        repairs.last_ms = now
        for hour in sorted(repairs.pending)[:-MAX_PENDING]:
            del repairs.pending[hour]  # bounded: the oldest give way
        try:
            await self._verify(ctx, site, repairs)
            await self._repair_due(ctx, site, repairs, owns)
            _set_gauge(site, repairs, now)
        except StreamerError as exc:
            REPAIR_REVISITS.labels(site=site, outcome="unreadable").inc()
            log_event(
                log, logging.WARNING, "repair pass failed", site=site, error=f"{type(exc).__name__}: {exc}"
            )

    async def _repair_due(
        self, ctx: ProducerContext, site: str, repairs: SiteRepairs, owns: Callable[[str], bool] | None
    ) -> None:
        state = ctx.states.get(site)
        watermark = state.watermark_ms if state is not None else None
        hours = sorted(h for h in repairs.pending if watermark is not None and h + HOUR_MS <= watermark)
        if not hours:
            return
        hours = [h for h in hours if h < hours[0] + JUDGED_SPAN_MS]  # one answer; later ones next pass
        answer = await self._source.completeness(site, TimeRange(hours[0], hours[-1] + HOUR_MS))
        judged = {int(h["hour"]): h for h in answer["hours"]}
        repairs.judged |= {h: (int(x["stored"]), int(x["expected"])) for h, x in judged.items()}
        first_read = answer.get("read_from")
        for hour in hours:
            info = judged.get(hour)
            ratio = None if info is None else info["completeness"]
            if first_read is None or hour < int(first_read):  # before the site's first window: never read
                del repairs.pending[hour]
                REPAIR_REVISITS.labels(site=site, outcome="never_read").inc()
                continue
            if ratio is None or ratio >= self._settings.repair_min_completeness:
                del repairs.pending[hour]
                REPAIR_REVISITS.labels(site=site, outcome="complete").inc()
                continue
            assert info is not None
            cost = max(repairs.estimate, math.ceil(int(info["expected"]) / self._settings.ace_page_size), 1)
            if not repairs.budget.allows(ctx.clock(), cost):
                REPAIR_REVISITS.labels(site=site, outcome="deferred").inc()
                log_event(log, logging.INFO, "repair deferred by the budget", site=site, hour=hour)
                return
            if owns is not None and not owns(site):
                return
            del repairs.pending[hour]
            await self._refetch(ctx, site, hour, int(info["samples"]), repairs)

    async def _refetch(
        self, ctx: ProducerContext, site: str, hour: int, stored: int, repairs: SiteRepairs
    ) -> None:
        window = Window(hour, hour + HOUR_MS, "repair")
        REPAIR_REVISITS.labels(site=site, outcome="refetched").inc()
        calls_before = ctx.client.site_stats(site).api_calls
        try:
            run = await sync_window(ctx, site, window, new_sync_id(site, window), weather=False, state=None)
        finally:
            calls = ctx.client.site_stats(site).api_calls - calls_before
            repairs.budget.spend(ctx.clock(), calls)
            REPAIR_API_REQUESTS.labels(site=site).inc(calls)
        repairs.estimate = run.api_calls
        REPAIR_WINDOWS.labels(site=site).inc()
        repairs.verify.append((run, stored))

    async def _verify(self, ctx: ProducerContext, site: str, repairs: SiteRepairs) -> None:
        """What the repairs of earlier passes brought back (the processor has stored them since):
        counted, and recorded by re-publishing their ``sync_runs`` row (the latest record wins)."""
        if not repairs.verify:
            return
        start = min(run.window_start_ms for run, _ in repairs.verify)
        end = max(run.window_end_ms for run, _ in repairs.verify)
        answer = await self._source.completeness(site, TimeRange(start, end))
        # every distinct sample, uncapped and of points without a collect_interval too: what came back
        stored = {int(h["hour"]): int(h["samples"]) for h in answer["hours"]}
        repairs.judged |= {int(h["hour"]): (int(h["stored"]), int(h["expected"])) for h in answer["hours"]}
        for run, before in repairs.verify:
            recovered = max(0, stored.get(run.window_start_ms, 0) - before)
            REPAIR_SAMPLES_RECOVERED.labels(site=site).inc(recovered)
            updated = run.model_copy(update={"samples_recovered": recovered})
            await ctx.send_and_wait(
                ctx.settings.topic_sync_runs, site.encode(), updated.model_dump_json().encode()
            )
            log_event(
                log, logging.INFO, "repair verified", site=site, sync_id=run.sync_id, recovered=recovered
            )
        repairs.verify.clear()


def _set_gauge(site: str, repairs: SiteRepairs, now: int) -> None:
    """Completeness of the whole hours of the last 24 that the loop has read (an hour is read when it
    reaches its first age, and again after a repair): no query of its own."""
    end = now - now % HOUR_MS
    for hour in [h for h in repairs.judged if h < end - 24 * HOUR_MS]:
        del repairs.judged[hour]
    hours = [v for h, v in repairs.judged.items() if h < end]
    expected = sum(e for _, e in hours)
    if expected > 0:
        COMPLETENESS_24H.labels(site=site).set(sum(min(s, e) for s, e in hours) / expected)


@asynccontextmanager
async def repair_loop(ctx: ProducerContext) -> AsyncIterator[RepairLoop | None]:
    """Attach a repair loop to ``ctx`` for the block (none when ``repair_revisit_s`` is empty); it
    reads completeness through the query read path (``streamer.query.backend``)."""
    if not ctx.settings.repair_revisit_s:
        yield None
        return
    from streamer.query.backend import make_backend

    backend = make_backend(ctx.settings)
    ctx.repair = RepairLoop(ctx.settings, backend)
    try:
        yield ctx.repair
    finally:
        ctx.repair = None
        await backend.aclose()
