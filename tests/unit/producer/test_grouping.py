"""Bounded grouping by point: memory bound, record cap, each sample once and in order, both page orders."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any

import orjson
import pytest

from streamer.ace.pagination import Sample, decode_timeseries_page
from streamer.models import SamplesRecord
from streamer.producer.grouping import Group, PointGrouper, frame

POINTS = 37
PER_POINT = 50


def as_decoded(items: list[Any]) -> list[Any]:
    """``items`` as the client hands them over: one page's body, decoded (``Sample`` structs when the
    page is well-formed, else orjson's dicts and whatever else it holds)."""
    # json, not orjson: a test page may hold a value nested deeper than orjson encodes
    return decode_timeseries_page(json.dumps({"point_samples": items}).encode())[0]


def as_given(items: list[Any]) -> list[Any]:
    return items


@pytest.fixture(params=[as_given, as_decoded], ids=["dicts", "decoded"])
def page_of(request: pytest.FixtureRequest) -> Any:
    """Each grouping test runs on raw dicts and on pages as the client decodes them."""
    return request.param


def samples(order: str) -> list[dict[str, Any]]:
    """POINTS x PER_POINT samples, grouped by point or interleaved by time."""
    items = [(p, t) for p in range(POINTS) for t in range(PER_POINT)]
    if order == "interleaved":
        items.sort(key=lambda pt: (pt[1], pt[0]))
    return [{"name": f"pt/{p}", "time": f"t{t:04d}", "value": p * 1000 + t} for p, t in items]


def pages(items: list[dict[str, Any]], size: int, page_of: Any = as_given) -> list[list[Any]]:
    return [page_of(items[i : i + size]) for i in range(0, len(items), size)]


def run(grouper: PointGrouper, page_list: list[list[dict[str, Any]]]) -> list[Group]:
    out: list[Group] = []
    for page in page_list:
        out += grouper.add(page)
        assert grouper.held <= grouper.gather_max
    out += grouper.finish()
    return out


@pytest.mark.parametrize("order", ["grouped", "interleaved"])
@pytest.mark.parametrize(
    ("record_max", "gather_max", "page_size"), [(20, 100, 64), (7, 30, 200), (1000, 10_000, 333)]
)
@pytest.mark.parametrize("defer_max", [0, 64, 500])
def test_every_sample_once_in_order_within_bounds(
    order: str, record_max: int, gather_max: int, page_size: int, defer_max: int, page_of: Any
) -> None:
    """Whatever the bounds, the pages deferred and the page order: each sample is emitted exactly once,
    per-point order is kept, no record exceeds record_max and the grouper never holds more than
    gather_max samples."""
    items = samples(order)
    grouper = PointGrouper(record_max, gather_max, defer_max=defer_max)
    page_list = pages(items, page_size, page_of)
    if page_of is as_decoded:  # well-formed pages: the fast path of Sample structs
        assert all(s.__class__ is Sample for page in page_list for s in page)
    groups = run(grouper, page_list)
    emitted = [(g.point, time, value) for g in groups for time, value in g.pairs()]
    assert Counter(emitted) == Counter((s["name"], s["time"], s["value"]) for s in items)
    assert len(emitted) == POINTS * PER_POINT
    assert all(1 <= g.size == len(g.pairs()) <= record_max for g in groups)
    assert grouper.peak_held <= gather_max
    per_point: dict[str, list[str]] = defaultdict(list)
    for g in groups:
        per_point[g.point] += [time for time, _ in g.pairs()]
    assert all(times == sorted(times) for times in per_point.values())
    assert grouper.accepted == POINTS * PER_POINT and grouper.held == 0


def test_interleaved_pages_still_make_full_records(page_of: Any) -> None:
    """Pages that interleave every point still produce records of record_max when memory allows."""
    grouper = PointGrouper(record_max=PER_POINT, gather_max=POINTS * PER_POINT)
    groups = run(
        grouper, pages(samples("interleaved"), POINTS, page_of)
    )  # each page: one sample of every point
    assert len(groups) == POINTS
    assert all(g.size == PER_POINT for g in groups)


def test_memory_bound_flushes_largest_buffers_first(page_of: Any) -> None:
    """When the bound is hit, the largest buffers are emitted before smaller ones."""
    grouper = PointGrouper(record_max=1000, gather_max=10)
    first = grouper.add(page_of([{"name": "big", "time": f"t{i}", "value": i} for i in range(6)]))
    first += grouper.add(
        page_of([{"name": "small", "time": "t0", "value": 0}, {"name": "mid", "time": "t0", "value": 0}])
    )
    assert first == []
    out = grouper.add(page_of([{"name": "new", "time": f"t{i}", "value": i} for i in range(3)]))
    assert [(g.point, g.size) for g in out] == [("big", 6)]
    assert grouper.held == 5


def test_page_larger_than_bound_is_split(page_of: Any) -> None:
    """A single page larger than gather_max is taken in slices; the bound still holds."""
    grouper = PointGrouper(record_max=100, gather_max=16)
    groups = run(grouper, [page_of(samples("interleaved"))])
    assert sum(g.size for g in groups) == POINTS * PER_POINT
    assert grouper.peak_held <= 16


def test_malformed_samples_are_counted_and_skipped(page_of: Any) -> None:
    """Samples without a name or time (or not objects) are skipped and counted; the rest pass."""
    grouper = PointGrouper(record_max=10, gather_max=100)
    bad: list[Any] = [
        {"time": "t"},
        {"name": "p"},
        {"name": None, "time": "t"},
        {"name": "p", "time": ""},
        None,
        5,
    ]
    good = [{"name": "p", "time": "t1", "value": None}, {"name": "p", "time": "t2"}]
    groups = run(grouper, [page_of(bad + good)])
    assert grouper.malformed == len(bad)
    assert [(g.point, g.pairs()) for g in groups] == [("p", [("t1", None), ("t2", None)])]


def test_bounds_must_be_positive() -> None:
    """A zero bound is a programming error, refused at construction."""
    with pytest.raises(ValueError, match="positive"):
        PointGrouper(0, 10)


def test_framed_record_is_the_samples_record_json(page_of: Any) -> None:
    """head + point + mid + body + tail decodes to exactly the SamplesRecord of the group, with raw
    values kept as the API gave them (numbers, numeric strings, booleans, null, odd strings)."""
    raw: list[Any] = [1.5, "72.5", True, None, "nan", "inf", 'quote " and \\ backslash', 7]
    grouper = PointGrouper(record_max=100, gather_max=100)
    page = [{"name": 'p/"x"', "time": f"t{i}", "value": v} for i, v in enumerate(raw)]
    groups = run(grouper, [page_of(page)])
    head, mid, tail = frame("site é", "sync/1")
    value = b"".join((head, orjson.dumps(groups[0].point), mid, groups[0].body, tail))
    record = SamplesRecord.model_validate_json(value)
    assert record.site == "site é" and record.point == 'p/"x"' and record.sync_id == "sync/1"
    assert orjson.loads(value)["samples"] == [[f"t{i}", v] for i, v in enumerate(raw)]


def _nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


def test_unencodable_and_oversized_samples_are_skipped_by_reason(page_of: Any) -> None:
    """A value nested past orjson's limit or larger than a record is skipped and counted by reason;
    every other sample of the point and the page is emitted once, in order."""
    grouper = PointGrouper(record_max=100, gather_max=1000, max_bytes=2_000)
    page: list[Any] = [{"name": "p", "time": f"t{i}", "value": i} for i in range(5)]
    page.insert(2, {"name": "p", "time": "deep", "value": _nested(300)})
    page.insert(4, {"name": "p", "time": "huge", "value": "x" * 5_000})
    page.append({"name": "q", "time": "t0", "value": 1})
    groups = run(grouper, [page_of(page)])
    assert grouper.malformed == 2 and grouper.malformed_by == {"unencodable": 1, "too_large": 1}
    assert {g.point: g.pairs() for g in groups} == {"p": [(f"t{i}", i) for i in range(5)], "q": [("t0", 1)]}
    assert grouper.accepted == 6 and grouper.held == 0


@pytest.mark.parametrize("order", ["grouped", "interleaved"])
@pytest.mark.parametrize("defer_max", [0, 30])
def test_records_are_split_by_encoded_size(order: str, defer_max: int, page_of: Any) -> None:
    """Large values make records of fewer samples than record_max: each body stays within max_bytes
    less the point's name, and every sample is emitted exactly once, in order."""
    items = [
        {"name": f"pt/{p}", "time": f"t{t:04d}", "value": "v" * (100 + 37 * t)}
        for p in range(3)
        for t in range(60)
    ]
    if order == "interleaved":
        items.sort(key=lambda s: s["time"])
    max_bytes = 4_000
    grouper = PointGrouper(record_max=50, gather_max=1_000, max_bytes=max_bytes, defer_max=defer_max)
    groups = run(grouper, pages(items, 25, page_of))
    assert Counter((g.point, t, v) for g in groups for t, v in g.pairs()) == Counter(
        (s["name"], s["time"], s["value"]) for s in items
    )
    for g in groups:
        assert len(g.body) + len(orjson.dumps(g.point)) + len(g.point) <= max_bytes
    assert len(groups) > len(items) // 50 + 3  # the bytes bound split them, not the count
    per_point: dict[str, list[str]] = defaultdict(list)
    for g in groups:
        per_point[g.point] += [t for t, _ in g.pairs()]
    assert all(times == sorted(times) for times in per_point.values())


@pytest.mark.parametrize("order", ["grouped", "interleaved"])
def test_points_named_up_front_change_nothing_but_the_path(order: str, page_of: Any) -> None:
    """Points named up front (the site's table: some never sampled, some sampled points not named)
    still give each point's samples exactly once and in order, within both bounds."""
    items = samples(order)
    named = [f"pt/{p}" for p in range(0, POINTS, 2)] + ["pt/never"]
    grouper = PointGrouper(20, 100, known=named)
    groups = run(grouper, pages(items, 64, page_of))
    per_point: dict[str, list[tuple[str, Any]]] = defaultdict(list)
    for g in groups:
        per_point[g.point] += g.pairs()
    want: dict[str, list[tuple[str, Any]]] = defaultdict(list)
    for s in items:
        want[s["name"]].append((s["time"], s["value"]))
    assert per_point == want
    assert all(1 <= g.size <= 20 for g in groups) and grouper.peak_held <= 100
    assert grouper.accepted == POINTS * PER_POINT and grouper.malformed == 0


def test_deferred_pages_are_grouped_together(page_of: Any) -> None:
    """With defer_max one page, a page waits for the next: two interleaved pages become one encoding
    per point (records of both pages' samples), and finish() groups a page still waiting."""
    page_list = pages(samples("interleaved"), POINTS, page_of)[:3]  # each page: one sample a point
    grouper = PointGrouper(record_max=PER_POINT, gather_max=10_000, defer_max=POINTS)
    assert grouper.add(page_list[0]) == [] and grouper.held == 0  # waiting, not grouped yet
    assert grouper.add(page_list[1]) == [] and grouper.held == 2 * POINTS
    assert grouper.add(page_list[2]) == [] and grouper.held == 2 * POINTS
    groups = grouper.finish()
    assert sorted((g.point, g.pairs()) for g in groups) == sorted(
        (f"pt/{p}", [(f"t{t:04d}", p * 1000 + t) for t in range(3)]) for p in range(POINTS)
    )
    assert grouper.held == 0 and grouper.accepted == 3 * POINTS
