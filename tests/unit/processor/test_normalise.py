"""Normalisation of raw samples: times to epoch ms, values to float, rejects counted by reason."""

from __future__ import annotations

import math
import re
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamer.errors import RecordDecodeError
from streamer.processor.normalise import (
    _memoised_times,
    decode_samples_record,
    is_always_kept,
    normalise_samples,
)
from streamer.times import BAD_TIME, TimeCache
from streamer.times import iso_to_ms as parse_time_ms

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


def test_bad_samples_are_rejected_alone_and_their_neighbours_load() -> None:
    """Objects, lists, non-pairs and non-string times are rejected one sample at a time, by reason."""
    samples: list[Any] = [
        ["2024-01-01T00:00:00Z", 1.0],
        ["2024-01-01T00:01:00Z", {"v": 1}],
        ["2024-01-01T00:02:00Z", [1]],
        ["2024-01-01T00:03:00Z"],
        ["2024-01-01T00:04:00Z", 1, 2],
        "2024-01-01T00:05:00Z",
        {"time": "2024-01-01T00:06:00Z", "value": 1},
        [1704067200, 1.0],
        [["2024"], 1.0],
        ["2024-01-01T00:07:00Z", "7"],
    ]
    out = normalise_samples(samples, TimeCache())
    assert out.values == [1.0, 7.0]
    assert out.ts_ms == [T0, T0 + 7 * 60_000]
    assert out.rejected == {"not_scalar": 2, "malformed": 4, "bad_time": 2}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12", 12.0),
        ("-1.5e3", -1500.0),
        ("+.5", 0.5),
        ("5.", 5.0),
        (" 1e3\t", 1000.0),
        ("1_000", None),
        ("\u0661\u0662", None),  # Arabic-Indic digits
        ("\uff11", None),  # a full-width digit
        ("\u00a012", None),  # no-break space
        ("12abc", None),
        ("0x1A", None),
        ("1e", None),
        (".", None),
        ("", None),
    ],
)
def test_numeric_strings_follow_the_stricter_rule(text: str, expected: float | None) -> None:
    """ASCII digits, sign, point and exponent only: underscores and non-ASCII digits are non-numeric."""
    for cache in (TimeCache(), _warm_cache()):  # the slow path, and the fast path of memoised times
        out = normalise_samples([["2024-01-01T00:00:00Z", text]], cache)
        if expected is None:
            assert (out.values, out.rejected) == ([], {"non_numeric": 1})
        else:
            assert (out.values, out.rejected) == ([expected], {})


def _warm_cache() -> TimeCache:
    cache = TimeCache()
    normalise_samples([["2024-01-01T00:00:00Z", None]], cache)
    return cache


def test_the_all_numeric_fast_path_rejects_nan_and_inf_by_reason() -> None:
    """With every time memoised and every value a number, NaN and ±inf still count by reason."""
    cache = _warm_cache()
    times = [f"2024-01-01T00:0{m}:00Z" for m in range(6)]
    normalise_samples([[t, None] for t in times], cache)
    pairs: list[Any] = [[times[0], 1.5], [times[1], float("nan")], [times[2], float("inf")]]
    pairs += [[times[3], "-inf"], [times[4], 10**400], [times[5], 2]]
    assert _memoised_times(pairs, cache, 2**62) is not None  # the fast path's precondition holds
    out = normalise_samples(pairs, cache)
    assert (out.ts_ms, out.values) == ([T0, T0 + 5 * 60_000], [1.5, 2.0])
    assert out.rejected == {"nan": 1, "inf": 3}
    finite = normalise_samples([[t, float(i)] for i, t in enumerate(times)], cache)
    assert finite.values == [float(i) for i in range(6)] and finite.rejected == {}


def test_samples_after_max_ms_are_rejected_as_future_and_kept_raw() -> None:
    """A sample later than ``max_ms`` is counted as future and returned raw; up to it, it loads."""
    samples: list[Any] = [
        ["2024-01-01T00:00:00Z", 1],
        ["2024-01-01T00:01:00Z", 2],
        ["2024-01-01T00:02:00Z", 3],
        ["2024-01-01T00:02:00Z", None],
    ]
    for cache in (TimeCache(), _warm_cache()):
        normalise_samples(samples, cache)  # memoise every time: the fast path must check too
        out = normalise_samples(samples, cache, max_ms=T0 + 60_000)
        assert (out.ts_ms, out.values) == ([T0, T0 + 60_000], [1.0, 2.0])
        assert out.rejected == {"future": 1, "null": 1}
        assert out.future == [["2024-01-01T00:02:00Z", 3]]


def test_time_cache_is_bounded_and_caches_invalid_times() -> None:
    """The memo maps never grow past their bound and answer repeated (also invalid) strings the same."""
    cache = TimeCache(max_entries=3)
    texts = [f"2024-01-0{d}T00:0{i}:0{i}Z" for d in range(1, 8) for i in range(8)]
    assert [cache.lookup(t) for t in texts] == [parse_time_ms(t) for t in texts]
    assert max(len(cache.heads), len(cache.tails), len(cache.whole)) <= 3
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


_NUMBER = re.compile(
    r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|[+-]?(nan|inf|infinity)", re.IGNORECASE
)
_STRIPPED = " \t\n\r"


def _reference_value(raw: Any) -> tuple[str | None, float | None]:
    """(reason, value) of one raw value by the rules of ace-api.md, one sample at a time."""
    if raw is None:
        return "null", None
    if isinstance(raw, bool):
        return None, float(raw)
    if isinstance(raw, int):
        return None, float(raw) if abs(raw) < 2**1024 else math.inf * (1 if raw > 0 else -1)
    if isinstance(raw, float):
        return None, raw
    if isinstance(raw, str):
        if not _NUMBER.fullmatch(raw.strip(_STRIPPED)):
            return "non_numeric", None
        return None, float(raw)
    return "not_scalar", None


def _reference(samples: list[Any], max_ms: int) -> tuple[list[int], list[float], dict[str, int], list[Any]]:
    """normalise_samples' answer, computed naively: each sample judged alone with the one parser."""
    ts_ms: list[int] = []
    values: list[float] = []
    rejected: dict[str, int] = {}
    future: list[Any] = []
    for pair in samples:
        reason = None
        if not (isinstance(pair, list) and len(pair) == 2):
            reason = "malformed"
        else:
            ms = parse_time_ms(pair[0]) if isinstance(pair[0], str) else None
            why, value = _reference_value(pair[1])
            if ms is None:
                reason = "bad_time"
            elif why is not None or value is None:
                reason = why
            elif math.isnan(value):
                reason = "nan"
            elif math.isinf(value):
                reason = "inf"
            elif ms > max_ms:
                reason = "future"
                future.append(pair)
            else:
                ts_ms.append(ms)
                values.append(value)
        if reason is not None:
            rejected[reason] = rejected.get(reason, 0) + 1
    return ts_ms, values, rejected, future


_TIMES = st.one_of(
    st.sampled_from(
        [
            "2024-01-01T00:00:43Z",
            "2024-01-01T00:01:43.000Z",
            "2023-12-31T19:04:43-05:00",
            "2024-01-01T02:08:43.000+02:00",
            "2024-01-01T00:07:43.000000+00:00",
            "2024-01-01 00:09:43",
            "2299-12-31T23:59:59.999Z",
            "2300-01-01T00:00:00Z",
            "1899-12-31T23:59:59Z",
            "2024-13-01T00:00:00Z",
            "2024-01-01T00:00",
            "garbage",
            "",
        ]
    ),
    st.text(max_size=24),
)
_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**1100), max_value=2**1100),
    st.floats(),
    st.sampled_from(["12", "-1.5e3", " 1e3\t", "nan", "-Infinity", "1e400", "1_000", "n/a", "\u0661", ""]),
    st.text(max_size=6),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.lists(st.integers(), max_size=2),
)
_PAIRS = st.tuples(_TIMES, _VALUES).map(list)
_NOT_PAIRS = st.one_of(
    st.text(max_size=3),
    st.integers(),
    st.none(),
    st.lists(_TIMES, max_size=3),
    st.dictionaries(_TIMES, _VALUES, min_size=2, max_size=2),  # unpacks in two, like a pair
    st.tuples(st.integers(), _VALUES).map(list),
)


@settings(max_examples=400, deadline=None)
@given(samples=st.lists(st.one_of(_PAIRS, _PAIRS, _PAIRS, _NOT_PAIRS), max_size=12), future=st.booleans())
def test_normalise_agrees_with_judging_each_sample_alone(samples: list[Any], future: bool) -> None:
    """Fast paths or not, cold or memoised times: every sample kept or rejected as a naive judge of
    that sample alone would (times by the one parser, values by the strict rule)."""
    max_ms = T0 + 60_000 if future else 10**13
    cache = TimeCache()
    for _ in range(2):  # cold, then with every time memoised (the comprehensions' path)
        out = normalise_samples(samples, cache, max_ms=max_ms)
        assert (out.ts_ms, out.values, out.rejected, out.future) == _reference(samples, max_ms)
        assert all(type(v) is float for v in out.values)
        if out.hour is not None:  # the one hour it names holds every kept sample
            assert all(out.hour * 1000 <= ms < out.hour * 1000 + 3_600_000 for ms in out.ts_ms)
        assert out.newest is None or out.newest == max(out.ts_ms)


def test_the_fast_path_gives_the_newest_kept_time_and_only_when_every_sample_was_kept() -> None:
    """All samples kept: the newest is their max; a reject (it may have been the newest): None."""
    cache = TimeCache()
    kept = [["2024-01-01T00:00:43Z", 1.0], ["2024-01-01T00:07:00Z", 2]]
    rejected = [["2024-01-01T00:00:43Z", 1.0], ["2024-01-01T00:59:00Z", None]]
    for _ in range(2):  # cold (unknown), then memoised (the fast path)
        first, second = normalise_samples(kept, cache), normalise_samples(rejected, cache)
    assert first.newest == T0 + 420_000
    assert second.newest is None and second.ts_ms == [T0 + 43_000]


def test_an_object_of_two_keys_is_malformed_also_when_its_keys_look_like_a_sample() -> None:
    """{time: …, "12": …} unpacks in two like a pair; it is malformed, memoised times or not."""
    samples: list[Any] = [["2024-01-01T00:00:43Z", 1.0], {"2024-01-01T00:00:43Z": 1, "12": 2}]
    cache = TimeCache()
    for _ in range(2):
        out = normalise_samples(samples, cache)
        assert (out.ts_ms, out.values, out.rejected) == ([T0 + 43_000], [1.0], {"malformed": 1})


def test_the_fast_path_names_the_one_hour_of_a_records_rows() -> None:
    """Memoised times within one hour give that hour (the rollup key), rejects or not; across two, None."""
    cache = _warm_cache()
    hour = [["2024-01-01T00:00:43Z", 1.0], ["2024-01-01T00:59:59.999Z", None], ["2024-01-01T00:07:00Z", 2]]
    across = [["2024-01-01T00:59:59.999Z", 1.0], ["2024-01-01T01:00:00Z", 2.0]]
    for _ in range(2):  # cold (the per-sample loops: hour unknown), then memoised
        first, second = normalise_samples(hour, cache), normalise_samples(across, cache)
    assert (first.ts_ms, first.rejected, first.hour) == ([T0 + 43_000, T0 + 420_000], {"null": 1}, T0 // 1000)
    assert second.hour is None and len(second.ts_ms) == 2


def test_finite_values_whose_sum_overflows_are_all_kept() -> None:
    """The all-finite check is a sum: when finite values overflow it, none is rejected for it."""
    cache = _warm_cache()
    pairs: list[Any] = [["2024-01-01T00:00:00Z", 1e308], ["2024-01-01T00:01:00Z", 1e308]]
    pairs.append(["2024-01-01T00:02:00Z", "nan"])
    for _ in range(2):
        out = normalise_samples(pairs[:2], cache)
        assert (out.ts_ms, out.values, out.rejected) == ([T0, T0 + 60_000], [1e308, 1e308], {})
        out = normalise_samples(pairs, cache)
        assert (out.ts_ms, out.values, out.rejected) == ([T0, T0 + 60_000], [1e308, 1e308], {"nan": 1})


def test_a_record_of_mostly_rejects_keeps_its_few_good_samples_in_order() -> None:
    """Many rejects (past the in-place deletions) and few: the same kept samples, in order, counted."""
    cache = _warm_cache()
    times = [f"2024-01-01T00:{m:02d}:00Z" for m in range(60)]
    for good_every in (1, 3, 7, 59):
        pairs: list[Any] = [[t, float(i) if i % good_every == 0 else None] for i, t in enumerate(times)]
        for _ in range(2):
            out = normalise_samples(pairs, cache)
            kept = [i for i in range(60) if i % good_every == 0]
            assert (out.ts_ms, out.values) == ([T0 + i * 60_000 for i in kept], [float(i) for i in kept])
            assert out.rejected == ({"null": 60 - len(kept)} if len(kept) < 60 else {})
