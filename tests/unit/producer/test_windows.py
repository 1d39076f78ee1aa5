"""next_window and friends: incremental windows with overlap, bounded backfill windows, manual ranges."""

from __future__ import annotations

import itertools

from streamer.models import BackfillProgress, SyncState
from streamer.producer.windows import (
    Window,
    advance,
    backfill_state,
    next_window,
    range_windows,
    read_spans,
    window_count,
    window_now,
)
from streamer.settings import Settings, load_settings

H = 3_600_000
NOW = 1_700_000_000_000


def settings(**overrides: object) -> Settings:
    values: dict[str, object] = {"overlap_s": 600, "max_window_s": 3600, "initial_lookback_s": 3600}
    values.update(overrides)
    return load_settings(**values)


def state(watermark: int, backfill: BackfillProgress | None = None) -> SyncState:
    return SyncState(site="s", watermark_ms=watermark, backfill=backfill, updated_at_ms=watermark)


def test_no_state_starts_at_initial_lookback() -> None:
    """A site never synced reads the last initial_lookback_s, up to now, as one incremental window."""
    assert next_window(None, NOW, settings()) == Window(NOW - H, NOW, "incremental")


def test_no_state_with_long_lookback_is_backfilled_in_max_windows() -> None:
    """A lookback longer than max_window_s starts with a backfill window of exactly max_window_s."""
    window = next_window(None, NOW, settings(initial_lookback_s=24 * 3600))
    assert window == Window(NOW - 24 * H, NOW - 23 * H, "backfill")


def test_incremental_window_starts_overlap_before_watermark() -> None:
    """An up-to-date site re-reads overlap_s before its watermark and ends at now; the fresh samples
    begin at the watermark."""
    window = next_window(state(NOW - 300_000), NOW, settings())
    assert window == Window(NOW - 900_000, NOW, "incremental", fresh_ms=NOW - 300_000)


def test_site_far_behind_gets_bounded_backfill_window() -> None:
    """A site behind by more than max_window_s gets one max_window_s window, overlap included."""
    window = next_window(state(NOW - 5 * H), NOW, settings())
    assert window == Window(NOW - 5 * H - 600_000, NOW - 4 * H - 600_000, "backfill")
    assert window is not None and window.span_ms == H


def test_catch_up_windows_are_contiguous_without_overlap() -> None:
    """During a catch-up, each window starts where the previous ended, and the last one ends at now."""
    current: SyncState | None = state(NOW - 3 * H)
    windows = []
    while (window := next_window(current, NOW, settings())) is not None:
        windows.append(window)
        current = advance(current, "s", window, "id", NOW)
        if window.kind == "incremental":
            break
    assert [w.kind for w in windows] == ["backfill", "backfill", "backfill", "incremental"]
    assert windows[0].start_ms == NOW - 3 * H - 600_000
    for earlier, later in itertools.pairwise(windows):
        assert later.start_ms == earlier.end_ms
    assert windows[-1].end_ms == NOW
    assert all(w.span_ms <= H for w in windows)
    assert current is not None and current.watermark_ms == NOW and current.backfill is None


def test_up_to_date_site_has_no_window() -> None:
    """A watermark at or after now means nothing to read."""
    assert next_window(state(NOW), NOW, settings()) is None
    assert next_window(state(NOW + 5), NOW, settings()) is None


def test_advance_moves_watermark_to_window_end_and_counts_backfill() -> None:
    """After a backfill window the state records progress; after an incremental one it clears it."""
    first = advance(None, "s", Window(0, H, "backfill"), "a", NOW)
    second = advance(first, "s", Window(H, 2 * H, "backfill"), "b", NOW)
    assert (second.watermark_ms, second.last_sync_id) == (2 * H, "b")
    assert second.backfill == BackfillProgress(target_end_ms=NOW, windows_done=2)
    final = advance(second, "s", Window(2 * H, NOW, "incremental"), "c", NOW)
    assert final.backfill is None and final.watermark_ms == NOW


def test_range_windows_cover_range_exactly() -> None:
    """A manual range is cut into contiguous windows of at most max_window_s, the last one shorter."""
    windows = list(range_windows(0, 2 * H + 1_000, settings()))
    assert windows == [
        Window(0, H, "backfill"),
        Window(H, 2 * H, "backfill"),
        Window(2 * H, 2 * H + 1_000, "backfill"),
    ]
    assert window_count(0, 2 * H + 1_000, settings()) == 3
    assert window_count(0, 2 * H, settings()) == 2


def test_backfill_state_never_moves_watermark_backwards_or_past_a_gap() -> None:
    """A manual window moves the watermark only forward, and only when the window contains it."""
    behind = state(10 * H)
    assert backfill_state(behind, Window(2 * H, 3 * H, "backfill"), "x", NOW) is None
    assert backfill_state(behind, Window(12 * H, 13 * H, "backfill"), "x", NOW) is None
    joined = backfill_state(behind, Window(10 * H - 5, 11 * H, "backfill"), "x", NOW)
    assert joined is not None and joined.watermark_ms == 11 * H and joined.last_sync_id == "x"
    assert backfill_state(None, Window(0, H, "backfill"), "x", NOW) is None


def test_window_now_is_bounded_by_the_api_clock() -> None:
    """A local clock ahead of the API's gives way to the API's now less the margin; one behind is kept."""
    assert window_now(NOW + H, NOW, 10.0) == NOW - 10_000
    assert window_now(NOW - H, NOW, 10.0) == NOW - H
    assert window_now(NOW, NOW, 0.0) == NOW
    assert window_now(NOW + H, None, 10.0) == NOW + H  # no Date seen yet


def test_a_clock_ahead_never_puts_the_watermark_past_the_api() -> None:
    """Windows walked with a clock 30 min ahead end at the API's now less the margin, and the next
    cycle, once the API's clock moved 5 min on, re-reads from before the old watermark to the new now."""
    api, ahead, margin = NOW, NOW + 30 * 60_000, 10.0
    first = next_window(None, window_now(ahead, api, margin), settings())
    assert first == Window(api - 10_000 - H, api - 10_000, "incremental")
    after = advance(None, "s", first, "id", ahead)
    assert after.watermark_ms == api - 10_000
    later = api + 5 * 60_000
    second = next_window(after, window_now(ahead + 5 * 60_000, later, margin), settings())
    assert second == Window(api - 10_000 - 600_000, later - 10_000, "incremental", api - 10_000)


def test_a_split_read_takes_the_fresh_span_first_and_the_spans_cover_the_window() -> None:
    """Split, an incremental window is read fresh span first, then the overlap up to a second past the
    watermark; not split, or without an overlap, it is one span."""
    window = next_window(state(NOW - 60_000), NOW, settings())
    assert window is not None and window.fresh_ms == NOW - 60_000
    assert read_spans(window, split=True) == [(NOW - 60_000, NOW), (NOW - 660_000, NOW - 59_000)]
    assert read_spans(window, split=False) == [(NOW - 660_000, NOW)]
    for whole in (
        next_window(None, NOW, settings()),  # the first window: nothing read before it
        next_window(state(NOW - 5 * H), NOW, settings()),  # a backfill window
        next_window(state(NOW - 60_000), NOW, settings(overlap_s=0)),
    ):
        assert whole is not None and read_spans(whole, split=True) == [(whole.start_ms, whole.end_ms)]
