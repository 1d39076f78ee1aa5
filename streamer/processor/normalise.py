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
_BAD = -(2**62)  # cached marker of an unparseable time string


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
    """Bounded memo of ``parse_time_ms``; cleared wholesale when full (cheap, and rarely happens)."""

    __slots__ = ("_map", "max_entries")

    def __init__(self, max_entries: int = 200_000) -> None:
        self._map: dict[str, int] = {}
        self.max_entries = max_entries

    def lookup(self, text: str) -> int:
        """Epoch ms of ``text``; ``_BAD`` if invalid. Raises ``RecordDecodeError`` if not a string."""
        cached = self._map.get(text)
        if cached is not None:
            return cached
        if text.__class__ is not str:
            raise RecordDecodeError(f"sample time is {type(text).__name__}, not a string")
        ms = parse_time_ms(text)
        if len(self._map) >= self.max_entries:
            self._map.clear()
        value = _BAD if ms is None else ms
        self._map[text] = value
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
    str_, float_, int_, bool_ = str, float, int, bool
    for pair in samples:
        if pair.__class__ is not list or len(pair) != 2:
            raise RecordDecodeError("a sample is not a [time, value] pair")
        text, raw = pair
        try:
            ms = lookup(text)
        except TypeError as exc:  # unhashable time (a list or an object)
            raise RecordDecodeError("sample time is not a string") from exc
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
