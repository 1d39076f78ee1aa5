"""Normalisation of raw samples: times to epoch ms, values to float, rejects counted by reason."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from streamer.errors import RecordDecodeError
from streamer.processor.normalise import (
    BAD_TIME,
    TimeCache,
    decode_samples_record,
    is_always_kept,
    normalise_samples,
    parse_time_ms,
)

T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-01T00:00:00Z", T0),
        ("2024-01-01T00:00:00+00:00", T0),
        ("2024-01-01T02:00:00+02:00", T0),
        ("2023-12-31T18:30:00-05:30", T0),
        ("2024-01-01T00:00:00.123Z", T0 + 123),
        ("2024-01-01T00:00:00.1Z", T0 + 100),
        ("2024-01-01T00:00:00.123999Z", T0 + 123),  # sub-ms digits truncated, never rounded up
        ("2024-01-01T00:00:00.123456789Z", T0 + 123),
        ("2024-01-01T00:00:00", T0),  # naive: the API speaks UTC
        ("1970-01-01T00:00:00Z", 0),
        ("1969-12-31T23:59:59.999Z", -1),
    ],
)
def test_parse_time_ms_accepts_iso_8601_variants(text: str, expected: int) -> None:
    """ISO 8601 with Z, offsets, any fraction length and naive UTC give exact epoch milliseconds."""
    assert parse_time_ms(text) == expected


@pytest.mark.parametrize(
    "text", ["", "yesterday", "2024-13-01T00:00:00Z", "2024-01-01T25:00:00Z", "1800-01-01"]
)
def test_parse_time_ms_rejects_bad_or_out_of_range_times(text: str) -> None:
    """Unparseable strings and instants outside DateTime64(3)'s range are invalid (None)."""
    assert parse_time_ms(text) is None


def test_values_become_floats_and_rejects_are_counted_by_reason() -> None:
    """Numbers, numeric strings and booleans load; null/nan/inf/non-numeric/bad time are counted."""
    samples: list[Any] = [
        ["2024-01-01T00:00:00Z", 72.5],
        ["2024-01-01T00:01:00Z", 3],
        ["2024-01-01T00:02:00Z", "68.25"],
        ["2024-01-01T00:03:00Z", True],
        ["2024-01-01T00:04:00Z", False],
        ["2024-01-01T00:05:00Z", " 1e3 "],
        ["2024-01-01T00:06:00Z", None],
        ["2024-01-01T00:07:00Z", "nan"],
        ["2024-01-01T00:08:00Z", "NaN"],
        ["2024-01-01T00:09:00Z", "inf"],
        ["2024-01-01T00:10:00Z", "-Infinity"],
        ["2024-01-01T00:11:00Z", "1e400"],
        ["2024-01-01T00:12:00Z", 10**400],
        ["2024-01-01T00:13:00Z", "on"],
        ["2024-01-01T00:14:00Z", ""],
        ["not a time", 1.0],
        ["2024-01-01T00:15:00Z", float("nan")],
    ]
    out = normalise_samples(samples, TimeCache())
    assert out.values == [72.5, 3.0, 68.25, 1.0, 0.0, 1000.0]
    assert out.ts_ms == [T0 + i * 60_000 for i in range(6)]
    assert all(type(v) is float for v in out.values)
    assert out.rejected == {"null": 1, "nan": 3, "inf": 4, "non_numeric": 2, "bad_time": 1}


@pytest.mark.parametrize(
    "samples",
    [
        [["2024-01-01T00:00:00Z"]],
        [["2024-01-01T00:00:00Z", 1, 2]],
        ["2024-01-01T00:00:00Z"],
        [{"time": "2024-01-01T00:00:00Z", "value": 1}],
        [[1704067200, 1.0]],
        [[["2024"], 1.0]],
        [["2024-01-01T00:00:00Z", {"v": 1}]],
        [["2024-01-01T00:00:00Z", [1]]],
    ],
)
def test_schema_violations_raise_decode_error(samples: list[Any]) -> None:
    """A sample that is not a [string, scalar] pair makes the whole record a decode error."""
    with pytest.raises(RecordDecodeError):
        normalise_samples(samples, TimeCache())


def test_time_cache_is_bounded_and_caches_invalid_times() -> None:
    """The memo maps never grow past their bound and answer repeated (also invalid) strings the same."""
    cache = TimeCache(max_entries=3)
    texts = [f"2024-01-0{d}T00:0{i}:0{i}Z" for d in range(1, 8) for i in range(8)]
    assert [cache.lookup(t) for t in texts] == [parse_time_ms(t) for t in texts]
    assert max(len(cache._heads), len(cache._tails), len(cache._full)) <= 3
    first = cache.lookup("garbage")
    assert cache.lookup("garbage") == first
    assert normalise_samples([["garbage", 1.0]], cache).rejected == {"bad_time": 1}


def test_time_cache_agrees_with_the_full_parser_on_every_shape() -> None:
    """Split head/tail parsing gives exactly parse_time_ms's answer (or bad) for every time shape."""
    heads = [
        "2024-01-01T00:00",
        "2023-12-31T23:59",
        "2024-02-29 12:30",
        "1900-01-01T00:00",
        "2299-12-31T23:59",
    ]
    heads += ["2024-13-01T00:00", "2024-01-01T24:00", "2024-1-01T00:00:", "20240101T000000"]
    tails = [":00Z", ":59.999Z", ":22.000+02:00", ":22.123456-05:00", ":22.1234567+00:00", ":05", ":05.5"]
    tails += [":60Z", ":22+25:00", ":2Z", ":22.Z", "", "Z", "+02:00", ":22z", ":22.000+0200"]
    cache = TimeCache()
    for head in heads:
        for tail in tails:
            text = head + tail
            exact = parse_time_ms(text)
            assert cache.lookup(text) == (BAD_TIME if exact is None else exact), text


def test_decode_samples_record_reads_the_wire_shape() -> None:
    """A valid ace.samples value decodes to site, point and its raw pairs."""
    raw = orjson.dumps(
        {"site": "s", "point": "s/p", "samples": [["2024-01-01T00:00:00Z", "1"]], "sync_id": "x"}
    )
    record = decode_samples_record(raw)
    assert (record.site, record.point, record.samples) == ("s", "s/p", [["2024-01-01T00:00:00Z", "1"]])


@pytest.mark.parametrize(
    "raw",
    [
        None,
        b"{not json",
        b"[]",
        b'{"point": "p", "samples": []}',
        b'{"site": 1, "point": "p", "samples": []}',
        b'{"site": "s", "point": "", "samples": []}',
        b'{"site": "s", "point": "p", "samples": {}}',
        b'{"site": "s", "point": "p", "samples": [["t", NaN]]}',
    ],
)
def test_decode_samples_record_rejects_bad_records(raw: bytes | None) -> None:
    """Bad JSON, wrong top-level types or missing fields raise RecordDecodeError."""
    with pytest.raises(RecordDecodeError):
        decode_samples_record(raw)


def test_weather_points_are_always_kept() -> None:
    """weather.* points are synthesised by the producer and always collected."""
    assert is_always_kept("weather.temperature")
    assert not is_always_kept("ahu_1/weather.temperature")
