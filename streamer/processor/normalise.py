"""Decoding and normalisation of ``ace.samples`` records: pure functions on the hot path.

A record is ``{"site", "point", "samples": [[time_iso, raw_value], ...], "sync_id"}`` (see
``streamer.models.SamplesRecord``). Normalising turns each pair into ``(epoch_ms, float)`` or rejects it
with a reason; rejects are counted, never raised, one sample at a time: a sample that is not a pair, or
whose value is an object or a list, is rejected alone and the record's other samples still load. Only a
record whose top level breaks the schema raises ``RecordDecodeError`` (the whole record then goes to the
DLQ). Samples dated after the caller's ``max_ms`` (now + ``max_future_s``) are rejected as ``future``
and kept raw in ``Normalised.future``, so the caller can dead-letter them.

A numeric string is a number only by the stricter of Python's ``float`` and JavaScript's ``parseFloat``
(the seed's rule): ASCII digits, an optional sign, decimal point and exponent, surrounded at most by
ASCII spaces, tabs and line breaks. ``"1_000"``, ``"١٢"`` (non-ASCII digits), ``"12abc"``, ``"0x1A"``
are ``non_numeric``; ``"nan"``, ``"inf"``, ``"Infinity"`` are rejected as ``nan``/``inf``.

The loops are flat and avoid pydantic on purpose: this runs for every sample (hundreds of thousands
per second). Times are parsed through the memo of ``streamer.times`` (``TimeCache``).
"""

from __future__ import annotations

import re
from contextlib import suppress
from dataclasses import dataclass, field
from itertools import compress
from math import isfinite
from typing import Any

import orjson

from streamer.errors import RecordDecodeError
from streamer.sink.rollups import HOUR_MS, HOUR_S
from streamer.times import BAD_TIME, MAX_MS, MIN_MS, TimeCache

# Reasons a sample is rejected (label values of streamer_samples_rejected_total).
REJECT_NULL = "null"
REJECT_NAN = "nan"
REJECT_INF = "inf"
REJECT_NON_NUMERIC = "non_numeric"
REJECT_BAD_TIME = "bad_time"
REJECT_NOT_SCALAR = "not_scalar"  # the value is a JSON object or list
REJECT_MALFORMED = "malformed"  # the sample is not a [time, value] pair
REJECT_FUTURE = "future"  # later than now + max_future_s (also dead-lettered, see Normalised.future)
REJECT_REASONS = (
    REJECT_NULL,
    REJECT_NAN,
    REJECT_INF,
    REJECT_NON_NUMERIC,
    REJECT_BAD_TIME,
    REJECT_NOT_SCALAR,
    REJECT_MALFORMED,
    REJECT_FUTURE,
)
# Whitespace Python's float() strips and JavaScript's parseFloat() does not (the vertical tab and form
# feed it does, but JSON writes neither raw).
_ODD_SPACE = re.compile(r"[\x0b\x0c\x1c-\x1f]")

_BAD = BAD_TIME
_MIN_MS, _MAX_MS = MIN_MS, MAX_MS
_FEW_REJECTS = 16  # deleted in place up to this many; more: the kept samples are copied out instead


@dataclass(slots=True)
class Normalised:
    """One record's valid samples as columns, its rejects by reason, and its future samples raw.

    ``hour``: the start (epoch s) of the one hour every kept sample falls in, when the fast path saw
    it (the min and max of the record's times it checks anyway); None: not known, compute it.
    ``newest``: the latest kept time, when the fast path kept every sample (its max); None: compute it.
    """

    ts_ms: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    rejected: dict[str, int] = field(default_factory=dict)
    future: list[Any] = field(default_factory=list)
    hour: int | None = None
    newest: int | None = None


# Not frozen: a frozen dataclass sets each field through object.__setattr__, four times the cost of
# a plain one, and one is made for every record (nothing mutates it but ``release``).
@dataclass(slots=True)
class RawRecord:
    """A decoded ``ace.samples`` value whose top-level shape is valid; samples not checked yet."""

    site: str
    point: str
    samples: list[Any]  # the raw pairs; empty once ``release()``d
    count: int  # how many pairs the record held

    def release(self) -> RawRecord:
        """Drop the raw pairs once they are normalised (site, point and count kept); returns self."""
        self.samples = []
        return self


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
    return RawRecord(site, point, samples, len(samples))


def normalise_samples(samples: list[Any], cache: TimeCache, max_ms: int = _MAX_MS - 1) -> Normalised:
    """Validate and convert ``[time, value]`` pairs; rejects are counted by reason, never raised.

    ``max_ms``: the latest instant accepted (now + ``max_future_s``); later samples are rejected as
    ``future`` and returned raw in ``future``.

    Fast path first: a comprehension for times whose head and tail are memoised and all within range,
    one for values (floats as they are, other numbers through ``float``, strings by the strict rule,
    anything else the ``_INVALID`` NaN); if all are finite, done, else the finite ones are kept and
    only the others are judged, one by one, for their reason (C-level passes: ``isfinite``,
    ``list.index``). A record that does not qualify (a time not memoised, out of range or future, a
    sample that is not a pair) goes through per-sample loops, which count every reject by reason.
    """
    memoised = _memoised_times(samples, cache, min(max_ms, _MAX_MS - 1))
    if memoised is None:
        return _values_each(_times_each(samples, cache), samples, max_ms)
    ts_ms, lo, hi = memoised
    values = _values(samples)
    if values is None:
        return _values_each(ts_ms, samples, max_ms)
    first = lo // HOUR_MS  # the rollups' bucket
    hour = first * HOUR_S if first == hi // HOUR_MS else None
    total = sum(values)
    if total - total == 0.0:  # x - x is 0.0 only for finite x
        return Normalised(ts_ms, values, {}, [], hour, hi)
    return _finite_only(ts_ms, values, samples, hour)


# What a value that is no number becomes on the fast path: a NaN told apart from a NaN value by identity.
_INVALID = float("nan")


def _memoised_times(samples: list[Any], cache: TimeCache, max_ms: int) -> tuple[list[int], int, int] | None:
    """The times, their min and max, if each head and tail is memoised and all are within range."""
    heads, tails = cache.heads, cache.tails
    try:
        ts_ms = [heads[t[:16]] + tails[t[16:]] for t, _ in samples]
        lo, hi = min(ts_ms), max(ts_ms)  # ValueError: no samples (the slow path's loops answer)
    except (KeyError, TypeError, ValueError):
        return None
    if lo < _MIN_MS or hi > max_ms:
        return None  # a memoised bad head or tail is -2**62: out of range; or a future sample
    return ts_ms, lo, hi


def _values(samples: list[Any]) -> list[float] | None:
    """Each value as a float (``_INVALID`` if it is no number); None if a sample is not a pair.

    ``p[1]`` rather than unpacking: an object of two keys unpacks like a pair (its keys) but has no
    item 1 (JSON keys are strings), and ``_memoised_times`` already refused anything but two items.
    """
    float_, bool_, int_, str_, text, invalid = float, bool, int, str, _text_value, _INVALID
    try:
        return [
            v
            if (k := (v := p[1]).__class__) is float_
            else float_(v)
            if k is bool_ or k is int_
            else text(v)
            if k is str_
            else invalid
            for p in samples
        ]
    except (KeyError, IndexError, TypeError, OverflowError):
        return None


def _text_value(raw: str) -> float:
    """The float of a numeric string by the strict rule (module doc); ``_INVALID`` otherwise.

    For ASCII strings without underscores, ``float`` accepts what ``parseFloat`` reads whole, but for
    the odd whitespace ruled out here and the spellings of NaN and infinity, which are rejected anyway.
    """
    if "_" in raw or not raw.isascii() or (not raw.isprintable() and _ODD_SPACE.search(raw)):
        return _INVALID
    try:
        return float(raw)
    except ValueError:
        return _INVALID


def _finite_only(ts_ms: list[int], values: list[float], samples: list[Any], hour: int | None) -> Normalised:
    """The finite values and their times; each other value counted by its reason.

    The rejects are mostly few: their places are found by C-level scans (``list.index``) and, up to
    ``_FEW_REJECTS``, deleted from the two lists in place rather than both lists being copied through
    the mask. The kept samples are a subset of those ``hour`` was computed from: it holds for them.
    """
    keep = list(map(isfinite, values))
    bad: list[int] = []
    at = -1
    with suppress(ValueError):  # none left (or none at all: finite values whose sum overflowed)
        while True:
            at = keep.index(False, at + 1)
            bad.append(at)
    out = Normalised(ts_ms, values, {}, [], hour)
    rejected = out.rejected
    for i in bad:
        value = values[i]
        if value is _INVALID:
            raw = samples[i][1]
            reason = (
                REJECT_NULL
                if raw is None
                else REJECT_NON_NUMERIC
                if raw.__class__ is str
                else REJECT_NOT_SCALAR
            )
        else:
            reason = REJECT_NAN if value != value else REJECT_INF
        rejected[reason] = rejected.get(reason, 0) + 1
    if len(bad) <= _FEW_REJECTS:
        for i in reversed(bad):
            del ts_ms[i], values[i]
    else:  # each deletion moves the tail: a record of mostly rejects is copied through the mask
        out.ts_ms, out.values = list(compress(ts_ms, keep)), list(compress(values, keep))
    return out


def _times_each(samples: list[Any], cache: TimeCache) -> list[int]:
    """Epoch ms of every sample; ``BAD_TIME`` where invalid, not a string or not in a pair."""
    lookup = cache.lookup
    out: list[int] = []
    add = out.append
    for pair in samples:
        if pair.__class__ is list and len(pair) == 2 and pair[0].__class__ is str:
            add(lookup(pair[0]))
        else:
            add(_BAD)
    return out


def _values_each(ts_ms: list[int], samples: list[Any], max_ms: int) -> Normalised:
    out = Normalised()
    ts_add = out.ts_ms.append
    val_add = out.values.append
    rejected = out.rejected
    str_, float_, int_, bool_, list_ = str, float, int, bool, list
    odd_space = _ODD_SPACE.search
    for ms, pair in zip(ts_ms, samples, strict=True):
        if pair.__class__ is not list_ or len(pair) != 2:
            rejected[REJECT_MALFORMED] = rejected.get(REJECT_MALFORMED, 0) + 1
            continue
        raw = pair[1]
        kind = raw.__class__
        value: float | None
        if kind is float_:
            value = raw
        elif kind is str_:
            # number_of, inlined: this loop runs for most records (any reject in them sends them here)
            if "_" in raw or not raw.isascii() or (not raw.isprintable() and odd_space(raw)):
                value = None
            else:
                try:
                    value = float_(raw)
                except ValueError:
                    value = None
        elif kind is bool_:
            value = 1.0 if raw else 0.0
        elif kind is int_:
            try:
                value = float_(raw)
            except OverflowError:
                value = float_("inf")
        else:
            value = None
        if ms == _BAD:
            reason = REJECT_BAD_TIME
        elif value is None:
            reason = REJECT_NULL if raw is None else REJECT_NON_NUMERIC if kind is str_ else REJECT_NOT_SCALAR
        elif value - value != 0.0:  # NaN or ±inf
            reason = REJECT_NAN if value != value else REJECT_INF
        elif ms > max_ms:
            reason = REJECT_FUTURE
            out.future.append(pair)
        else:
            ts_add(ms)
            val_add(value)
            continue
        rejected[reason] = rejected.get(reason, 0) + 1
    return out


def is_always_kept(point: str) -> bool:
    """Weather points are synthesised by the producer and never configured: always collected."""
    return point.startswith("weather.")
