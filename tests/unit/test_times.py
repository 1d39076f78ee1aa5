"""streamer.times: the one ISO 8601 / epoch-ms parser and formatter, floor to the ms, against references."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from streamer.times import (
    BAD_TIME,
    MAX_MS,
    MIN_MS,
    SECONDS_SUSPECT_MS,
    TimeCache,
    TimeRangeError,
    iso_to_ms,
    ms_to_iso,
    seconds_warning,
    to_ms,
)

T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z

_DAYS = {1: 31, 2: 28, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}


@st.composite
def iso_texts(draw: st.DrawFn) -> tuple[str, int]:
    """An ISO 8601 string (any fraction length, Z / offset / naive, T or space) and its exact floor ms.

    The expected value is computed without datetime: numpy's day count for the date, integer
    arithmetic for the rest, the fraction's first three digits (floor), minus the offset.
    """
    year = draw(st.integers(1899, 2300))
    month = draw(st.integers(1, 12))
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    day = draw(st.integers(1, 29 if month == 2 and leap else _DAYS[month]))
    hour, minute, second = draw(st.integers(0, 23)), draw(st.integers(0, 59)), draw(st.integers(0, 59))
    fraction = draw(st.text("0123456789", max_size=12))
    zone = draw(st.sampled_from(["", "Z", "offset"]))
    offset_min = draw(st.integers(-(23 * 60 + 59), 23 * 60 + 59)) if zone == "offset" else 0
    sep = draw(st.sampled_from(["T", " "]))
    text = f"{year:04d}-{month:02d}-{day:02d}{sep}{hour:02d}:{minute:02d}:{second:02d}"
    if fraction:
        text += "." + fraction
    if zone == "Z":
        text += "Z"
    elif zone == "offset":
        sign = "-" if offset_min < 0 else "+"
        text += f"{sign}{abs(offset_min) // 60:02d}:{abs(offset_min) % 60:02d}"
    days = int(np.datetime64(f"{year:04d}-{month:02d}-{day:02d}", "D").astype(np.int64))
    millis = int((fraction + "000")[:3])
    ms = (days * 86_400 + hour * 3600 + minute * 60 + second) * 1000 + millis - offset_min * 60_000
    return text, ms


@settings(max_examples=1000)
@given(iso_texts())
@example(("1969-12-31T23:59:59.9995Z", -1))  # floor toward the past, also before 1970
@example(("2024-01-01T00:00:00.123999Z", T0 + 123))
@example(("2109-05-13T07:24:52.030Z", 4_397_873_092_030))  # timestamp() floats land on ...029 here
def test_iso_to_ms_is_the_floor_of_the_exact_instant(case: tuple[str, int]) -> None:
    """Every ISO form gives the exact instant floored to the ms, None outside 1900..2300."""
    text, ms = case
    expected = ms if MIN_MS <= ms < MAX_MS else None
    assert iso_to_ms(text) == expected
    if expected is None:
        with pytest.raises(TimeRangeError):
            to_ms(text)
    else:
        assert to_ms(text) == expected
        assert to_ms(f"  {text} ") == expected


@settings(max_examples=1000)
@given(iso_texts())
def test_the_processor_memo_agrees_with_the_parser(case: tuple[str, int]) -> None:
    """TimeCache (the hot path) answers what iso_to_ms answers, cold and memoised, on every ISO form."""
    text, _ = case
    exact = iso_to_ms(text)
    cache = TimeCache()
    assert cache.lookup(text) == (BAD_TIME if exact is None else exact)
    assert cache.lookup(text) == (BAD_TIME if exact is None else exact)


@settings(max_examples=1000)
@given(st.text(alphabet=st.sampled_from("0123456789-:T .Z+,zW"), max_size=32) | st.text(max_size=32))
def test_the_processor_memo_agrees_on_junk(text: str) -> None:
    """On arbitrary text the memo and the parser agree too: same ms or both invalid."""
    exact = iso_to_ms(text)
    assert TimeCache().lookup(text) == (BAD_TIME if exact is None else exact)


@settings(max_examples=1000)
@given(st.integers(MIN_MS, MAX_MS - 1))
def test_ms_to_iso_matches_numpy_and_round_trips(ms: int) -> None:
    """The formatter writes what numpy's datetime64 writes, and parses back to the same ms."""
    text = ms_to_iso(ms)
    assert text == np.datetime_as_string(np.datetime64(ms, "ms"), unit="ms") + "Z"
    assert iso_to_ms(text) == ms
    assert to_ms(str(ms)) == ms
    assert ms_to_iso(ms, digits=0) == np.datetime_as_string(np.datetime64(ms // 1000, "s"), unit="s") + "Z"


def test_ms_to_iso_digits_and_suffix() -> None:
    """digits picks the fraction's width (zero-padded past ms), suffix replaces Z."""
    assert ms_to_iso(T0 + 250, digits=6, suffix="+02:00") == "2024-01-01T00:00:00.250000+02:00"
    assert ms_to_iso(T0 + 250, digits=1, suffix="") == "2024-01-01T00:00:00.2"
    assert ms_to_iso(-1) == "1969-12-31T23:59:59.999Z"
    assert ms_to_iso(MIN_MS) == "1900-01-01T00:00:00.000Z"


@pytest.mark.parametrize("text", ["yesterday", "", "1e9", "-5x", "2024-13-01T00:00:00Z", "١٢٣", "12 34"])
def test_to_ms_rejects_what_is_no_time(text: str) -> None:
    """Neither ASCII epoch digits nor ISO 8601: a ValueError saying what to send (not a range error)."""
    with pytest.raises(ValueError, match="not an ISO 8601 time or epoch milliseconds") as info:
        to_ms(text)
    assert not isinstance(info.value, TimeRangeError)


def test_to_ms_range_is_the_storable_one() -> None:
    """Epoch digits and ISO outside DateTime64(3)'s 1900..2300 are a TimeRangeError; the bounds hold."""
    assert to_ms(str(MIN_MS)) == MIN_MS == iso_to_ms("1900-01-01T00:00:00Z")
    assert to_ms(str(MAX_MS - 1)) == MAX_MS - 1
    assert (
        int((datetime(2300, 1, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(milliseconds=1))
        == MAX_MS
    )
    for text in (
        str(MAX_MS),
        str(MIN_MS - 1),
        "9" * 40,
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
    ):
        with pytest.raises(TimeRangeError, match=r"outside 1900-01-01\.\.2300-01-01"):
            to_ms(text)


@pytest.mark.parametrize(
    ("text", "warned"),
    [
        ("17961", True),  # #16 item 7's example
        ("1700000000", True),  # epoch seconds of 2023
        (str(SECONDS_SUSPECT_MS - 1), True),
        (str(SECONDS_SUSPECT_MS), False),  # 1990-01-01 as ms
        ("1704067200000", False),
        ("0", False),  # the epoch itself, sent on purpose
        ("-17961", False),
        ("1970-01-01T00:00:17Z", False),  # ISO says what it means
        ("now", False),
    ],
)
def test_seconds_warning_flags_digits_that_look_like_epoch_seconds(text: str, warned: bool) -> None:
    """Epoch digits before 1990 when read as ms warn, saying how they are read and the seconds reading."""
    warning = seconds_warning(text)
    assert (warning is not None) == warned
    if text == "17961":
        assert warning == (
            "17961 is read as epoch milliseconds, 1970-01-01T00:00:17.961Z; as epoch seconds it would be "
            "1970-01-01T04:59:21Z (17961000 ms): send epoch ms or ISO 8601"
        )
