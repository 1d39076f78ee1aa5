"""Instants: ISO 8601 and epoch milliseconds. The one parser, the one formatter, the one rule.

An instant is an integer count of milliseconds since 1970-01-01T00:00:00Z (epoch ms). Accepted text:
epoch ms as ASCII digits (optional ``-``), or ISO 8601 as ``datetime.fromisoformat`` reads it (``Z``,
``+HH:MM`` offsets, a fraction of any length, ``T`` or a space between date and time); a time without
a zone is UTC, as the ACE API writes it.

**Rounding: floor to the millisecond.** Sub-millisecond digits are dropped toward the past, also
before 1970 (``…59.9995Z`` is ``…59.999``, ``1969-12-31T23:59:59.9995Z`` is −1). Floor because an
instant belongs to the millisecond it happened in: rounding would move ``23:59:59.9995`` into the
next second, minute, day and rollup bucket, which its text does not name, and would let two strings
that order one way compare the other way in milliseconds; it is also what ClickHouse's
``DateTime64(3)`` does with extra digits. The arithmetic is integer (``timedelta`` days, seconds,
microseconds), never ``timestamp()`` floats, which land on the millisecond below for about 0.7 % of
exact millisecond inputs.

Storable range: ``[MIN_MS, MAX_MS)`` = 1900-01-01 .. 2299-12-31, what ``DateTime64(3)`` holds (outside
it ClickHouse would clamp silently). ``TimeCache`` is the processor's memoised form of ``iso_to_ms``
(same rule, same answers, property-tested to agree).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Final

from streamer.errors import RecordDecodeError

MIN_MS: Final = -2_208_988_800_000  # 1900-01-01T00:00:00Z
MAX_MS: Final = 10_413_792_000_000  # 2300-01-01T00:00:00Z (exclusive)
BAD_TIME: Final = -(2**62)  # what TimeCache.lookup answers for an invalid time string
# Epoch digits below this (1990-01-01 as ms) are most likely epoch seconds: 9-10 digits for 1990..2200.
SECONDS_SUSPECT_MS: Final = 631_152_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)
_DIGITS = re.compile(r"-?[0-9]+")


class TimeRangeError(ValueError):
    """A well-formed time outside ``[MIN_MS, MAX_MS)``."""


def now_ms() -> int:
    """The wall clock in epoch milliseconds."""
    return time.time_ns() // 1_000_000


def _unchecked_iso_ms(text: str) -> int | None:
    """ISO 8601 → epoch ms by the module's rule, any year; None if not ISO 8601."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        delta = moment - _EPOCH
    except OverflowError:  # year 1 or 9999 shifted past datetime's range by its offset
        return MIN_MS - 1 if moment.year < 1970 else MAX_MS
    # timedelta keeps 0 <= seconds, microseconds: this is a floor, also for negative instants.
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def iso_to_ms(text: str) -> int | None:
    """ISO 8601 (not epoch digits) → epoch ms; None if not ISO 8601 or outside the storable range."""
    ms = _unchecked_iso_ms(text)
    return ms if ms is not None and MIN_MS <= ms < MAX_MS else None


def to_ms(text: str) -> int:
    """Epoch ms from epoch-ms digits or ISO 8601 (user input).

    Raises ``ValueError`` saying what to send, ``TimeRangeError`` (a ``ValueError``) if outside the
    storable range.
    """
    text = text.strip()
    if _DIGITS.fullmatch(text):
        ms = int(text) if len(text) <= 20 else MAX_MS  # int() of thousands of digits is slow
    else:
        iso = _unchecked_iso_ms(text)
        if iso is None:
            raise ValueError(f"{text!r} is not an ISO 8601 time or epoch milliseconds")
        ms = iso
    if not MIN_MS <= ms < MAX_MS:
        raise TimeRangeError(f"{text!r} is outside 1900-01-01..2300-01-01")
    return ms


def seconds_warning(text: str) -> str | None:
    """A warning if ``text`` is epoch digits that look like seconds rather than milliseconds.

    Digits whose value as ms falls in 1970-01-01 .. 1990-01-01 (exclusive; 0 is the epoch itself,
    sent on purpose) are most likely epoch seconds (or days): say how they are read and what to send.
    """
    text = text.strip()
    if not text.isascii() or not text.isdigit():
        return None
    ms = int(text)
    if not 0 < ms < SECONDS_SUSPECT_MS:
        return None
    seconds = ""
    if ms * 1000 < MAX_MS:
        seconds = f"; as epoch seconds it would be {ms_to_iso(ms * 1000, digits=0)} ({ms * 1000} ms)"
    return f"{text} is read as epoch milliseconds, {ms_to_iso(ms)}{seconds}: send epoch ms or ISO 8601"


def ms_to_iso(ms: int, *, digits: int = 3, suffix: str = "Z") -> str:
    """Epoch ms → ``YYYY-MM-DDTHH:MM:SS[.fff]`` UTC plus ``suffix``; ``digits`` of fraction (0..9).

    Integer arithmetic: the text names exactly the millisecond ``ms`` (floored when ``digits`` < 3).
    """
    text = (_NAIVE_EPOCH + timedelta(milliseconds=ms)).isoformat(timespec="seconds")
    if digits:
        text += "." + f"{ms % 1000:03d}{'0' * 6}"[:digits]
    return text + suffix


class TimeCache:
    """The processor's memo of ``iso_to_ms``: same answers, ``BAD_TIME`` for None, cheap on repeats.

    A time ``YYYY-MM-DDTHH:MM:SS[.fff][zone]`` is split at the seconds' colon into a head (the minute,
    naive) and a tail (seconds, fraction, zone). Both repeat a lot even when whole strings do not
    (points sample at their own phases, in several zones and fraction widths), and the instant is
    their sum: ``ms(head as UTC) + ms("1970-01-01T00:00" + tail)`` (the tail's zone offset comes out
    with the right sign; both are floors of exact integers, so the sum is the floor of the whole).
    Other shapes go through ``iso_to_ms``, memoised as whole strings. The processor's fast path reads
    ``heads`` and ``tails`` directly. Each map is cleared wholesale when full (cheap, and rare).
    """

    __slots__ = ("heads", "max_entries", "tails", "whole")

    def __init__(self, max_entries: int = 200_000) -> None:
        self.heads: dict[str, int] = {}
        self.tails: dict[str, int] = {}
        self.whole: dict[str, int] = {}
        self.max_entries = max_entries

    def lookup(self, text: str) -> int:
        """Epoch ms of ``text``; ``BAD_TIME`` if invalid. Raises ``RecordDecodeError`` if not a string."""
        if text.__class__ is not str:
            raise RecordDecodeError(f"sample time is {type(text).__name__}, not a string")
        head = self.heads.get(text[:16])
        if head is None:
            head = self._head(text[:16])
        if head != BAD_TIME and text[16:17] == ":":
            tail = self.tails.get(text[16:])
            if tail is None:
                tail = self._tail(text[16:])
            if tail == BAD_TIME:
                return BAD_TIME
            ms = head + tail
            return ms if MIN_MS <= ms < MAX_MS else BAD_TIME
        return self._whole(text)

    def _head(self, head: str) -> int:
        ms = BAD_TIME
        if len(head) == 16 and head[4] == "-" and head[7] == "-" and head[10] in "T " and head[13] == ":":
            whole_minute = _unchecked_iso_ms(head)  # naive: UTC
            if whole_minute is not None:
                ms = whole_minute
        return _remember(self.heads, head, ms, self.max_entries)

    def _tail(self, tail: str) -> int:
        ms = _unchecked_iso_ms("1970-01-01T00:00" + tail)
        return _remember(self.tails, tail, BAD_TIME if ms is None else ms, self.max_entries)

    def _whole(self, text: str) -> int:
        cached = self.whole.get(text)
        if cached is not None:
            return cached
        ms = iso_to_ms(text)
        return _remember(self.whole, text, BAD_TIME if ms is None else ms, self.max_entries)


def _remember(memo: dict[str, int], key: str, value: int, limit: int) -> int:
    if len(memo) >= limit:
        memo.clear()
    memo[key] = value
    return value
