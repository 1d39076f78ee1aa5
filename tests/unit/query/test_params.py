"""Parsing of query inputs: times, ranges, points, resolutions, tags, and the row-budget choice."""

from __future__ import annotations

import pytest

from streamer.errors import QueryError
from streamer.query import params as p

NOW = 1_700_000_000_000


def test_parse_time_accepts_epoch_ms_iso_now_and_relative() -> None:
    """Epoch ms, ISO 8601 with Z/offset/naive (UTC), 'now' and -6h all give the same epoch ms."""
    assert p.parse_time("1700000000123", "start", NOW) == 1_700_000_000_123
    assert p.parse_time("2023-11-14T22:13:20.123Z", "start", NOW) == 1_700_000_000_123
    assert p.parse_time("2023-11-14T23:13:20.123+01:00", "start", NOW) == 1_700_000_000_123
    assert p.parse_time("2023-11-14 22:13:20.123", "start", NOW) == 1_700_000_000_123
    assert p.parse_time("now", "end", NOW) == NOW
    assert p.parse_time("-6h", "start", NOW) == NOW - 6 * 3_600_000
    assert p.parse_time("-7d", "start", NOW) == NOW - 7 * 86_400_000


@pytest.mark.parametrize("value", ["yesterday", "", "  ", "2023-13-01T00:00:00Z", "1e9", "-5x"])
def test_parse_time_rejects_garbage_with_the_accepted_forms(value: str) -> None:
    """A value that is no time is a QueryError naming the parameter and the accepted forms."""
    with pytest.raises(QueryError, match="start") as info:
        p.parse_time(value, "start", NOW)
    assert "ISO 8601" in str(info.value)
    assert info.value.status == 400


def test_parse_time_rejects_out_of_range_instants() -> None:
    """Negative epochs and years past 2200 are refused, not passed to ClickHouse."""
    with pytest.raises(QueryError, match="outside"):
        p.parse_time("-1", "end", NOW)
    with pytest.raises(QueryError, match="outside"):
        p.parse_time("9999999999999999", "end", NOW)


def test_parse_range_defaults_and_order() -> None:
    """end defaults to now, start to a day before; start at or after end is refused."""
    assert p.parse_range(None, None, NOW) == p.TimeRange(NOW - 86_400_000, NOW)
    assert p.parse_range("1000", "2000", NOW) == p.TimeRange(1000, 2000)
    with pytest.raises(QueryError, match="must be before end"):
        p.parse_range("2000", "1000", NOW)
    with pytest.raises(QueryError, match="must be before end"):
        p.parse_range("2000", "2000", NOW)


def test_parse_points_splits_dedups_and_requires() -> None:
    """Comma lists and repeats merge in order without duplicates; missing points is a clear error."""
    assert p.parse_points(["a,b", "c", "a", " d , "], required=True) == ["a", "b", "c", "d"]
    assert p.parse_points([], required=False) == []
    with pytest.raises(QueryError, match="points is missing"):
        p.parse_points(["", ","], required=True)
    with pytest.raises(QueryError, match="at most 1000"):
        p.parse_points([",".join(f"p{i}" for i in range(1001))], required=True)


def test_resolution_format_tags_and_tolerance() -> None:
    """Each enumerated parameter accepts its values, defaults when absent, and names the choices."""
    assert p.parse_resolution(None) == "auto"
    assert p.parse_resolution("5m") == "5m"
    with pytest.raises(QueryError, match="raw, 5m, 1h, auto"):
        p.parse_resolution("1m")
    assert p.parse_format("") == "json"
    with pytest.raises(QueryError, match="json, csv"):
        p.parse_format("xml")
    assert p.parse_kv_tags(["unit:degF", "kind: air"]) == {"unit": "degF", "kind": "air"}
    with pytest.raises(QueryError, match="key:value"):
        p.parse_kv_tags(["unit"])
    assert p.parse_marker_tags(["ahu,temp", "sensor"]) == ["ahu", "temp", "sensor"]
    assert p.parse_tolerance(None) == 2.5
    with pytest.raises(QueryError, match="between 1 and 1000"):
        p.parse_tolerance("0.5")
    with pytest.raises(QueryError, match="not a number"):
        p.parse_tolerance("abc")


def test_bucket_count_includes_the_bucket_the_range_starts_in() -> None:
    """[00:02, 00:12) touches the 00:00, 00:05 and 00:10 five-minute buckets."""
    assert p.bucket_count(p.TimeRange(120_000, 720_000), 300_000) == 3
    assert p.bucket_count(p.TimeRange(0, 3_600_000), 3_600_000) == 1


def test_choose_resolution_auto_picks_the_finest_that_fits() -> None:
    """auto serves raw when it fits, else 5m, else 1h; nothing fitting is a 400 naming the budget."""
    assert p.choose_resolution("auto", {"raw": 10, "5m": 2, "1h": 1}, 10) == "raw"
    assert p.choose_resolution("auto", {"raw": 11, "5m": 10, "1h": 1}, 10) == "5m"
    assert p.choose_resolution("auto", {"raw": 99, "5m": 11, "1h": 10}, 10) == "1h"
    with pytest.raises(QueryError, match="even hourly rollups"):
        p.choose_resolution("auto", {"raw": 99, "5m": 50, "1h": 11}, 10)


def test_choose_resolution_explicit_raw_too_large_says_what_to_change() -> None:
    """An explicit raw request over the budget is refused with the budget setting and the way out."""
    assert p.choose_resolution("5m", {"raw": 99, "5m": 10, "1h": 1}, 10) == "5m"
    with pytest.raises(QueryError) as info:
        p.choose_resolution("raw", {"raw": 11, "5m": 1, "1h": 1}, 10)
    message = str(info.value)
    assert "~11 rows" in message and "STREAMER_API_ROW_BUDGET" in message and "resolution=5m" in message


def test_parse_time_floors_with_integer_arithmetic() -> None:
    """ISO times are floored to the ms exactly (streamer.times): no float timestamp() off by one."""
    assert p.parse_time("2109-05-13T07:24:52.030Z", "start", NOW) == 4_397_873_092_030
    assert p.parse_time("1970-07-14T18:37:25.448Z", "start", NOW) == 16_828_645_448
    assert p.parse_time("2023-11-14T22:13:20.1239999Z", "start", NOW) == 1_700_000_000_123


def test_parse_range_warns_about_epoch_seconds_but_accepts_them() -> None:
    """start=17961 is read as ms and kept; the range carries a warning naming the parameter."""
    time_range = p.parse_range("17961", "1704067200000", NOW)
    assert (time_range.start_ms, time_range.end_ms) == (17961, 1_704_067_200_000)
    (warning,) = time_range.warnings
    assert warning.startswith("start=17961 is read as epoch milliseconds")
    assert p.parse_range("1699999999000", "now", NOW).warnings == ()
