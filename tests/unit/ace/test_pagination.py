"""Pagination rules: list envelope parsing and the cursor walk state machine."""

from __future__ import annotations

import pytest

from streamer.ace.pagination import CursorWalk, parse_list_page, parse_timeseries_page
from streamer.ace.retry import AceTransient
from streamer.errors import PaginationError


def test_list_envelope_accepts_total() -> None:
    """`total` is read, items and pages are taken as sent."""
    page = parse_list_page({"page": 1, "pages": 46, "per_page": 100, "total": 4583, "items": [{"name": "a"}]})
    assert (page.items, page.pages, page.total) == ([{"name": "a"}], 46, 4583)


def test_list_envelope_accepts_total_items() -> None:
    """Deployments that send `total_items` instead of `total` are understood."""
    page = parse_list_page({"page": 1, "pages": 2, "per_page": 100, "total_items": 150, "items": []})
    assert (page.pages, page.total) == (2, 150)


def test_list_envelope_derives_pages_when_missing() -> None:
    """Without `pages`, total/per_page gives the page count; with neither, one page."""
    assert parse_list_page({"per_page": 100, "total": 250, "items": []}).pages == 3
    assert parse_list_page({"items": [{"name": "x"}]}).pages == 1


def test_list_envelope_rejects_non_envelopes() -> None:
    """A body without an items list is a transient failure (retried), never an empty list."""
    with pytest.raises(AceTransient):
        parse_list_page([{"name": "a"}])
    for body in ({"items": "nope"}, {"items": None}, {"page": 1, "pages": 1, "total": 0}):
        with pytest.raises(AceTransient):
            parse_list_page(body)


@pytest.mark.parametrize(
    ("body", "expected_cursor"),
    [
        ({"point_samples": [], "next_cursor": "c2", "has_more": True}, "c2"),
        ({"point_samples": [], "next_cursor": "c2", "has_more": False}, None),
        ({"point_samples": [], "next_cursor": None, "has_more": True}, None),
        ({"point_samples": [], "has_more": True}, None),
        ({"point_samples": [], "next_cursor": "", "has_more": True}, None),
        ({"point_samples": [], "next_cursor": "c2"}, "c2"),
        ({"point_samples": [], "next_cursor": "c2", "has_more": "false"}, None),
    ],
)
def test_timeseries_page_end_rules(body: dict[str, object], expected_cursor: str | None) -> None:
    """The walk ends on has_more false or a null/absent/empty cursor, whichever comes first."""
    assert parse_timeseries_page(body)[1] == expected_cursor


def test_timeseries_page_hands_samples_over_untouched() -> None:
    """The samples list is the decoded list itself: no copy, no per-sample work."""
    samples = [{"name": "p", "time": "t", "value": "72.5"}]
    assert parse_timeseries_page({"point_samples": samples, "next_cursor": None})[0] is samples


def test_timeseries_page_without_samples_is_an_error() -> None:
    """A 200 without a point_samples list is retried, never taken as the end of the data."""
    for body in ({"next_cursor": None}, {"point_samples": None}, "oops"):
        with pytest.raises(AceTransient):
            parse_timeseries_page(body)


def test_walk_follows_cursors_and_ends() -> None:
    """Each new cursor is followed with the page number advancing; None ends the walk."""
    walk = CursorWalk(max_pages=10, page_size=100, min_page_size=10)
    assert (walk.cursor, walk.number, walk.done) == (None, 1, False)
    walk.advance("c2")
    assert (walk.cursor, walk.number) == ("c2", 2)
    walk.advance(None)
    assert walk.done


def test_walk_rejects_a_repeated_cursor() -> None:
    """A cursor seen twice in one walk raises PaginationError."""
    walk = CursorWalk(max_pages=10, page_size=100, min_page_size=10)
    walk.advance("c2")
    walk.advance("c3")
    with pytest.raises(PaginationError, match="cursor repeated after page 3"):
        walk.advance("c2")


def test_walk_allows_exactly_max_pages() -> None:
    """max_pages pages are fine; needing page max_pages+1 raises PaginationError."""
    walk = CursorWalk(max_pages=3, page_size=100, min_page_size=10)
    walk.advance("c2")
    walk.advance("c3")
    assert walk.number == 3
    with pytest.raises(PaginationError, match="more than 3 pages"):
        walk.advance("c4")
    finished = CursorWalk(max_pages=3, page_size=100, min_page_size=10)
    for cursor in ("c2", "c3", None):
        finished.advance(cursor)
    assert finished.done


def test_walk_shrink_halves_down_to_the_minimum() -> None:
    """Each shrink halves the page size, never below the minimum; at the floor it reports no change."""
    walk = CursorWalk(max_pages=3, page_size=50_000, min_page_size=10_000)
    sizes = []
    for _ in range(4):
        changed = walk.shrink()
        sizes.append((walk.page_size, changed))
    assert sizes == [(25_000, True), (12_500, True), (10_000, True), (10_000, False)]
