"""Decoding and normalisation of ``ace.samples`` records: pure functions on the hot path.

A record is ``{"site", "point", "samples": [[time_iso, raw_value], ...], "sync_id"}`` (see
``streamer.models.SamplesRecord``). Normalising turns each pair into ``(epoch_ms, float)`` or rejects it
with a reason; rejects are counted, never raised. Only a record that breaks the schema raises
``RecordDecodeError`` (the whole record then goes to the DLQ).

The loops are flat and avoid pydantic on purpose: this runs for every sample (hundreds of thousands
per second). Time strings repeat a lot (pages interleave every point at the same instants), so parsed
times are cached.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from streamer.errors import RecordDecodeError

# Reasons a sample is rejected (label values of streamer_samples_rejected_total).
REJECT_NULL = "null"
REJECT_NAN = "nan"
REJECT_INF = "inf"
REJECT_NON_NUMERIC = "non_numeric"
REJECT_BAD_TIME = "bad_time"
REJECT_REASONS = (REJECT_NULL, REJECT_NAN, REJECT_INF, REJECT_NON_NUMERIC, REJECT_BAD_TIME)

# DateTime64(3) holds 1900-01-01 .. 2299-12-31; outside it ClickHouse would clamp silently.
_MIN_MS = int(datetime(1900, 1, 1, tzinfo=UTC).timestamp()) * 1000
_MAX_MS = int(datetime(2300, 1, 1, tzinfo=UTC).timestamp()) * 1000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BAD_TIME = _BAD = -(2**62)  # what TimeCache.lookup answers for an invalid time string


def parse_time_ms(text: str) -> int | None:
    """ISO 8601 (``Z`` or an offset, any fraction; naive means UTC) → epoch ms, or None if invalid.

    Sub-millisecond digits are truncated. Integer arithmetic, so no float rounding can move a sample
    into the neighbouring millisecond.
    """
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        delta = moment - _EPOCH
    except OverflowError:
        return None
    ms = (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
    return ms if _MIN_MS <= ms < _MAX_MS else None


class TimeCache:
    """Memo of ``parse_time_ms`` that also pays off when whole strings rarely repeat.

    A time ``YYYY-MM-DDTHH:MM:SS[.fff][zone]`` is split at the seconds' colon into a head (the minute,
    naive) and a tail (seconds, fraction, zone). Both repeat a lot even when whole strings do not
    (points sample at their own phases, in several zones and fraction widths), and the instant is
    their sum: ``ms(head as UTC) + ms("1970-01-01T00:00" + tail)`` (the tail's zone offset comes out
    with the right sign). Other shapes go through the full parser, memoised as whole strings. Each
    map is cleared wholesale when full (cheap, and rare).
    """

    __slots__ = ("_full", "_heads", "_tails", "max_entries")

    def __init__(self, max_entries: int = 200_000) -> None:
        self._heads: dict[str, int] = {}
        self._tails: dict[str, int] = {}
        self._full: dict[str, int] = {}
        self.max_entries = max_entries

    def lookup(self, text: str) -> int:
        """Epoch ms of ``text``; ``_BAD`` if invalid. Raises ``RecordDecodeError`` if not a string."""
        if text.__class__ is not str:
            raise RecordDecodeError(f"sample time is {type(text).__name__}, not a string")
        head = self._heads.get(text[:16])
        if head is None:
            head = self._head(text[:16])
        if head != _BAD and text[16:17] == ":":
            tail = self._tails.get(text[16:])
            if tail is None:
                tail = self._tail(text[16:])
            if tail == _BAD:
                return _BAD
            ms = head + tail
            return ms if _MIN_MS <= ms < _MAX_MS else _BAD
        return self._whole(text)

    def _head(self, head: str) -> int:
        ms = _BAD
        if len(head) == 16 and head[4] == "-" and head[7] == "-" and head[10] in "T " and head[13] == ":":
            try:
                moment = datetime.fromisoformat(head)
            except ValueError:
                pass
            else:
                delta = moment.replace(tzinfo=UTC) - _EPOCH
                ms = (delta.days * 86_400 + delta.seconds) * 1000
        return _remember(self._heads, head, ms, self.max_entries)

    def _tail(self, tail: str) -> int:
        try:
            moment = datetime.fromisoformat("1970-01-01T00:00" + tail)
        except ValueError:
            return _remember(self._tails, tail, _BAD, self.max_entries)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        delta = moment - _EPOCH
        ms = (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
        return _remember(self._tails, tail, ms, self.max_entries)

    def _whole(self, text: str) -> int:
        cached = self._full.get(text)
        if cached is not None:
            return cached
        ms = parse_time_ms(text)
        return _remember(self._full, text, _BAD if ms is None else ms, self.max_entries)


def _remember(memo: dict[str, int], key: str, value: int, limit: int) -> int:
    if len(memo) >= limit:
        memo.clear()
    memo[key] = value
    return value


@dataclass(slots=True)
class Normalised:
    """One record's valid samples as columns, and its rejects by reason."""

    ts_ms: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    rejected: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RawRecord:
    """A decoded ``ace.samples`` value whose top-level shape is valid; samples not checked yet."""

    site: str
    point: str
    samples: list[Any]


def decode_samples_record(raw: bytes | None) -> RawRecord:
    """Decode an ``ace.samples`` value; ``RecordDecodeError`` if not JSON or not the record shape."""
    if raw is None:
        raise RecordDecodeError("record value is null")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RecordDecodeError(f"not valid JSON: {exc}") from exc
    if doc.__class__ is not dict:
        raise RecordDecodeError(f"record is {type(doc).__name__}, not an object")
    site = doc.get("site")
    point = doc.get("point")
    samples = doc.get("samples")
    if site.__class__ is not str or not site:
        raise RecordDecodeError("field 'site' is missing or not a non-empty string")
    if point.__class__ is not str or not point:
        raise RecordDecodeError("field 'point' is missing or not a non-empty string")
    if samples.__class__ is not list:
        raise RecordDecodeError("field 'samples' is missing or not a list")
    return RawRecord(site, point, samples)


def normalise_samples(samples: list[Any], cache: TimeCache) -> Normalised:
    """Validate and convert ``[time, value]`` pairs; rejects are counted by reason, never raised.

    Raises ``RecordDecodeError`` only when a pair is not a pair or carries a non-scalar value (a schema
    violation: the record goes to the DLQ as a whole).
    """
    out = Normalised()
    ts_out = out.ts_ms
    val_out = out.values
    ts_add = ts_out.append
    val_add = val_out.append
    rejected = out.rejected
    lookup = cache.lookup
    heads_get = cache._heads.get
    tails_get = cache._tails.get
    str_, float_, int_, bool_, list_ = str, float, int, bool, list
    lo, hi = _MIN_MS, _MAX_MS
    for pair in samples:
        if pair.__class__ is not list_ or len(pair) != 2:
            raise RecordDecodeError("a sample is not a [time, value] pair")
        text, raw = pair
        # TimeCache.lookup's fast path, inlined: a bad head or tail is -2**62, so out of range.
        if text.__class__ is str_:
            head = heads_get(text[:16])
            tail = tails_get(text[16:])
            if head is not None and tail is not None and lo <= head + tail < hi:
                ms = head + tail
            else:
                ms = lookup(text)
        else:
            ms = lookup(text)
        if ms == _BAD:
            rejected[REJECT_BAD_TIME] = rejected.get(REJECT_BAD_TIME, 0) + 1
            continue
        kind = raw.__class__
        if kind is float_:
            value = raw
        elif kind is int_:
            try:
                value = float_(raw)
            except OverflowError:
                value = float_("inf")
        elif kind is str_:
            try:
                value = float_(raw)
            except ValueError:
                rejected[REJECT_NON_NUMERIC] = rejected.get(REJECT_NON_NUMERIC, 0) + 1
                continue
        elif kind is bool_:
            value = 1.0 if raw else 0.0
        elif raw is None:
            rejected[REJECT_NULL] = rejected.get(REJECT_NULL, 0) + 1
            continue
        else:
            raise RecordDecodeError(f"sample value is {kind.__name__}, not a scalar")
        if value - value != 0.0:  # NaN or ±inf: x - x is 0.0 for every finite float only
            reason = REJECT_NAN if value != value else REJECT_INF
            rejected[reason] = rejected.get(reason, 0) + 1
            continue
        ts_add(ms)
        val_add(value)
    return out


def is_always_kept(point: str) -> bool:
    """Weather points are synthesised by the producer and never configured: always collected."""
    return point.startswith("weather.")
