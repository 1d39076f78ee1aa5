"""Unit tests of page rendering (the fast byte path against the scalar reference) and of cursors."""

from __future__ import annotations

import itertools
from datetime import datetime

import numpy as np
import orjson
import pytest

from streamer.sim.catalog import MULTISTATE, catalog_of
from streamer.sim.config import SimConfig
from streamer.sim.model import window_samples, window_total
from streamer.sim.pages import Cursor, decode_cursor, encode_cursor, page_body, plan_page
from streamer.sim.render import iso_time, paged_body, raw_value, time_block, timeseries_body, value_block

T0 = 1_704_067_200_000
HOUR = 3_600_000
CONFIG = SimConfig(sites=("s1", "s2"), points=400)


@pytest.mark.parametrize("order", ["grouped", "interleaved"])
def test_body_equals_the_scalar_reference(order: str) -> None:
    """Every rendered sample parses to the reference name, time string and value (type included)."""
    cat = catalog_of(CONFIG, "s1")
    samples = window_samples(CONFIG, "s1", T0, T0 + HOUR, order, 1000, 20_000)  # type: ignore[arg-type]
    page = orjson.loads(timeseries_body(cat, samples, "next", True))
    assert page["has_more"] is True and page["next_cursor"] == "next"
    assert len(page["point_samples"]) == 20_000
    arrays = (samples.j, samples.t_ms, samples.kind, samples.milli, samples.suffix, samples.fraction)
    for got, (j, t, k, m, sfx, frac) in zip(
        page["point_samples"], zip(*(a.tolist() for a in arrays), strict=True), strict=True
    ):
        want = {
            "name": cat.names[j],
            "time": iso_time(t, sfx, frac),
            "value": raw_value(k, m, cat.ptype[j] == MULTISTATE),
        }
        assert got == want
        assert type(got["value"]) is type(want["value"])
        assert round(datetime.fromisoformat(got["time"]).timestamp() * 1000) == t


def test_time_forms_are_varied_and_exact() -> None:
    """Z, +00:00, +02:00 and -05:00, with 0, 3 or 6 fraction digits, all name the same instant."""
    t = np.array([T0 + 250] * 4 + [T0] * 3, dtype=np.int64)
    suffix = np.array([0, 1, 2, 3, 0, 2, 3], dtype=np.int64)
    fraction = np.array([3, 6, 3, 3, 0, 0, 6], dtype=np.int64)
    texts = [bytes(row).decode().strip().strip('"') for row in time_block(t, suffix, fraction)]
    assert texts == [
        "2024-01-01T00:00:00.250Z",
        "2024-01-01T00:00:00.250000+00:00",
        "2024-01-01T02:00:00.250+02:00",
        "2023-12-31T19:00:00.250-05:00",
        "2024-01-01T00:00:00Z",
        "2024-01-01T02:00:00+02:00",
        "2023-12-31T19:00:00.000000-05:00",
    ]
    assert texts == [
        iso_time(*args) for args in zip(t.tolist(), suffix.tolist(), fraction.tolist(), strict=True)
    ]


def test_value_text_covers_every_kind() -> None:
    """Numbers keep repr's form, strings are quoted, negatives and 8-digit values render exactly."""
    kind = np.array([0, 1, 0, 1, 2, 2, 3, 1, 4, 5, 6, 7, 0], dtype=np.int64)
    milli = np.array(
        [72_500, 72_500, -1_250, -3, 1000, 0, 3000, 2000, 0, 0, 0, 0, 12_345_678_901], dtype=np.int64
    )
    integral = np.array([False] * 6 + [True, True] + [False] * 5)
    rows = value_block(kind, milli, integral)
    values = [orjson.loads(bytes(row)) for row in rows]
    assert values == [
        72.5,
        "72.5",
        -1.25,
        "-0.003",
        True,
        False,
        3,
        "2",
        None,
        "nan",
        "inf",
        "n/a",
        12345678.901,
    ]
    with pytest.raises(ValueError, match="below 10"):
        value_block(kind[:1], np.array([10**11], dtype=np.int64), integral[:1])


def test_empty_and_last_pages() -> None:
    """An empty page is valid JSON; the last page may leave next_cursor out."""
    cat = catalog_of(CONFIG, "s1")
    empty = window_samples(CONFIG, "s1", T0, T0, "grouped", 0, 10)
    assert orjson.loads(timeseries_body(cat, empty, "c", True)) == {
        "point_samples": [],
        "has_more": True,
        "next_cursor": "c",
    }
    last = orjson.loads(timeseries_body(cat, empty, None, False, omit_cursor=True))
    assert last == {"point_samples": [], "has_more": False}


def test_paged_body_envelope() -> None:
    """List envelopes count pages from 1 and name the total as asked."""
    page = orjson.loads(paged_body(list(range(250)), 3, 100, "total_items"))
    assert page == {
        "page": 3,
        "pages": 3,
        "per_page": 100,
        "total_items": 250,
        "items": list(range(200, 250)),
    }
    assert orjson.loads(paged_body([], 1, 100))["pages"] == 1


def test_cursor_round_trip_and_rejects() -> None:
    """Cursors decode to what was encoded; foreign or damaged cursors are refused."""
    cursor = Cursor("s1", T0, T0 + HOUR, "grouped", offset=1234, page=5, empty=True)
    assert decode_cursor(encode_cursor(cursor)) == cursor
    for bad in ("", "!!!", encode_cursor(cursor)[:-3], "WzEsMiwzXQ"):
        with pytest.raises(ValueError, match="invalid cursor"):
            decode_cursor(bad)


def test_pages_repeat_samples_across_boundaries() -> None:
    """Each next page starts `repeat` positions before the previous ended; the walk ends exactly."""
    cat = catalog_of(CONFIG, "s1")
    total = window_total(CONFIG, cat, T0, T0 + HOUR)
    cursor: Cursor | None = Cursor("s1", T0, T0 + HOUR, "interleaved")
    spans = []
    while cursor is not None:
        plan = plan_page(CONFIG, cursor, 5000, 3, 0)
        spans.append((plan.offset, plan.end))
        assert plan.has_more == (plan.next_cursor is not None)
        cursor = plan.next_cursor
    assert spans[0][0] == 0 and spans[-1][1] == total
    assert all(b[0] == a[1] - 3 for a, b in itertools.pairwise(spans))


def test_empty_pages_carry_a_cursor() -> None:
    """With empty_every=2 data pages 2, 4, ... follow an empty page that keeps has_more and the place."""
    cursor: Cursor | None = Cursor("s1", T0, T0 + HOUR, "grouped")
    kinds = []
    seen = 0
    while cursor is not None:
        body, count = page_body(CONFIG, cursor, 8000, 0, 2)
        page = orjson.loads(body)
        kinds.append(count)
        seen += count
        cursor = decode_cursor(page["next_cursor"]) if page.get("next_cursor") else None
        assert page["has_more"] == (cursor is not None)
    assert kinds == [8000, 0, 8000, 8000, 0, 2400]  # 26,400 samples
    assert seen == window_total(CONFIG, catalog_of(CONFIG, "s1"), T0, T0 + HOUR)


def test_odd_sites_leave_next_cursor_out_of_the_last_page() -> None:
    """Site 1 ends with next_cursor null, site 2 with no next_cursor at all."""
    for site, has_key in (("s1", True), ("s2", False)):
        body, _ = page_body(CONFIG, Cursor(site, T0, T0 + 60_000, "grouped"), 10_000, 3, 0)
        page = orjson.loads(body)
        assert page["has_more"] is False
        assert ("next_cursor" in page) is has_key
