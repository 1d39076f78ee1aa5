"""Which time window a site syncs next: pure functions of the durable sync state and the clock.

The watermark in ``ace.sync`` means "every sample before this instant has been published". An
incremental window re-reads ``overlap_s`` before it, because the API may receive samples late. A site
further behind than ``max_window_s`` is caught up in windows of at most ``max_window_s`` (the seed's
review asked for 1 h): the first of them keeps the overlap, the following ones start exactly where the
previous one ended, since those instants were already in the past when they were read. "Now" is the
earlier of the local clock and the API's own (``window_now``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from streamer.models import BackfillProgress, SyncState
from streamer.settings import Settings
from streamer.times import ms_to_iso

WindowKind = Literal["incremental", "backfill", "repair"]


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open interval ``[start_ms, end_ms)`` of one site's timeseries.

    ``fresh_ms``: where the samples no earlier window read begin (an incremental window's previous
    watermark); before it lies the overlap, re-read for samples the API received late.
    """

    start_ms: int
    end_ms: int
    kind: WindowKind
    fresh_ms: int | None = None

    @property
    def span_ms(self) -> int:
        return self.end_ms - self.start_ms

    def __str__(self) -> str:
        return f"{self.kind} [{ms_to_iso(self.start_ms)}, {ms_to_iso(self.end_ms)})"


def window_now(local_ms: int, api_now_ms: int | None, margin_s: float) -> int:
    """The instant a window may end at: the local clock, but never past the API's clock less a margin.

    A producer clock running ahead would otherwise end windows in the API's future; the watermark
    would then pass samples the API had not received yet, and the next window would skip them.
    """
    if api_now_ms is None:  # no Date seen yet: nothing better than the local clock
        return local_ms
    return min(local_ms, api_now_ms - round(margin_s * 1000))


def next_window(state: SyncState | None, now_ms: int, settings: Settings) -> Window | None:
    """The next window to sync for a site, or None when it is already up to date."""
    max_ms = settings.max_window_s * 1000
    if state is None:
        start = now_ms - settings.initial_lookback_s * 1000
    elif state.backfill is not None:
        # Mid catch-up: the previous window already re-read the overlap.
        start = state.watermark_ms
    else:
        start = state.watermark_ms - settings.overlap_s * 1000
    if state is not None and now_ms <= state.watermark_ms:
        return None
    if now_ms <= start:
        return None
    if now_ms - start > max_ms:
        return Window(start, start + max_ms, "backfill")
    fresh = state.watermark_ms if state is not None and start < state.watermark_ms else None
    return Window(start, now_ms, "incremental", fresh)


# The spans of a split read meet with this much read twice, so an API that excluded both ends of a
# span would still return the instant they meet (the contract does not say which ends it includes).
SPLIT_JOIN_MS = 1_000


def read_spans(window: Window, split: bool) -> list[tuple[int, int]]:
    """The spans a window is read in, in order. Split: the fresh samples first, then the overlap.

    The fresh span is what freshness waits for; read last, behind the overlap's re-read (11 times as
    many samples at a 60 s poll and a 600 s overlap), it reached Kafka after the whole window. The
    split costs a request, so it pays only for a window of more than one page (the caller decides).
    """
    fresh = window.fresh_ms
    if not split or fresh is None or not window.start_ms < fresh < window.end_ms:
        return [(window.start_ms, window.end_ms)]
    return [(fresh, window.end_ms), (window.start_ms, min(fresh + SPLIT_JOIN_MS, window.end_ms))]


def advance(state: SyncState | None, site: str, window: Window, sync_id: str, now_ms: int) -> SyncState:
    """The sync state after ``window`` was fully acknowledged: the watermark moves to its end."""
    backfill: BackfillProgress | None = None
    if window.kind == "backfill":
        done = state.backfill.windows_done if state is not None and state.backfill is not None else 0
        backfill = BackfillProgress(target_end_ms=now_ms, windows_done=done + 1)
    return SyncState(
        site=site,
        watermark_ms=window.end_ms,
        last_sync_id=sync_id,
        backfill=backfill,
        updated_at_ms=now_ms,
    )


def range_windows(start_ms: int, end_ms: int, settings: Settings) -> Iterator[Window]:
    """An explicit range (``streamer backfill``) cut into windows of at most ``max_window_s``."""
    max_ms = settings.max_window_s * 1000
    start = start_ms
    while start < end_ms:
        end = min(start + max_ms, end_ms)
        yield Window(start, end, "backfill")
        start = end


def backfill_state(state: SyncState | None, window: Window, sync_id: str, now_ms: int) -> SyncState | None:
    """The state after a manual backfill window: the watermark only ever moves forward, and only
    when the window joins it (moving it past a gap would skip samples that were never read)."""
    if state is None or not window.start_ms <= state.watermark_ms < window.end_ms:
        return None
    return state.model_copy(
        update={"watermark_ms": window.end_ms, "last_sync_id": sync_id, "updated_at_ms": now_ms}
    )


def window_count(start_ms: int, end_ms: int, settings: Settings) -> int:
    max_ms = settings.max_window_s * 1000
    return max(0, -(-(end_ms - start_ms) // max_ms))
